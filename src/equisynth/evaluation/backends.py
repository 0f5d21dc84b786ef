"""Where the (seed, arm) tasks of an experiment run: this process, local cores, or a Ray cluster.

Every arm of every seed is a pure function of (protocol, seed, arm): a protocol draws each
arm's random seed from the experiment seed in a fixed order, whatever other arms are asked
for. So the tasks can run anywhere, in any order, and the results are the same:

* ``backend="local"``, ``n_jobs=1``: one seed after the other in this process;
* ``backend="local"``, ``n_jobs>1`` or ``-1``: every (seed, arm) task in joblib's loky worker
  processes on this machine's cores;
* ``backend="ray"``: every (seed, arm) task as a Ray task, on the cluster that
  ``ray.init()`` finds (``RAY_ADDRESS``, or a cluster already joined by the caller), else on a
  local Ray instance with ``n_jobs`` CPUs. Needs ``pip install 'equisynth[ray]'``; the
  workers must be able to import equisynth (install it on every node).

Examples
--------
>>> resolve_backend("local")
'local'
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from typing import Literal

import pandas as pd

from equisynth.exceptions import ConfigError

__all__ = ["Backend", "map_seeds", "resolve_backend"]

logger = logging.getLogger(__name__)

Backend = Literal["local", "ray"]


def resolve_backend(backend: str) -> str:
    """Check ``backend`` (``"local"`` or ``"ray"``; Ray must be importable for the latter)."""
    if backend not in ("local", "ray"):
        raise ConfigError(f"backend must be 'local' or 'ray', got {backend!r}")
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError(
                "backend 'ray' needs Ray, which is not installed; "
                "pip install 'equisynth[ray]' or use backend 'local'"
            ) from None
    return backend


def _run_task(protocol, seed: int, arms: Sequence[str] | None, keep: bool):
    """One seed of ``protocol``, restricted to ``arms`` (all of them when ``None``)."""
    if arms is not None:
        protocol = dataclasses.replace(protocol, arms=list(arms))
    return protocol.run_seed(seed, keep_training_sets=keep)


def _merge(protocol, seed: int, parts: list[tuple[str, object]]):
    """One seed's result from its ``(arm, result)`` parts, arms in the protocol's order."""
    from equisynth.evaluation.protocols import SeedResult

    order = list(protocol.arms)
    parts = [p for _, p in sorted(parts, key=lambda ap: order.index(ap[0]))]
    rows = pd.concat([p.rows for p in parts], ignore_index=True)
    sets, seconds = {}, {}
    for p in parts:
        sets.update(p.training_sets)
        seconds.update(p.seconds)
    test = next((p.test for p in parts if p.test is not None), None)
    holdout = next((p.holdout for p in parts if p.holdout is not None), None)
    return SeedResult(
        seed=seed, rows=rows, training_sets=sets, test=test, seconds=seconds, holdout=holdout
    )


def _tasks(protocol, seed_list):
    return [
        (seed, [arm], i == 0) for i, seed in enumerate(seed_list) for arm in list(protocol.arms)
    ]


def _run_ray(protocol, tasks, n_jobs: int, verbose: bool) -> list:
    import ray

    started = False
    if not ray.is_initialized():
        options = {"include_dashboard": False, "log_to_driver": verbose}
        if not os.environ.get("RAY_ADDRESS"):  # a local instance with n_jobs CPUs
            options["num_cpus"] = os.cpu_count() if n_jobs == -1 else max(1, n_jobs)
        ray.init(**options)
        started = True
    try:
        remote = ray.remote(num_cpus=1)(_run_task)
        ref = ray.put(protocol)
        futures = [remote.remote(ref, seed, arms, keep) for seed, arms, keep in tasks]
        return ray.get(futures)
    finally:
        if started:
            ray.shutdown()


def map_seeds(
    protocol,
    seed_list: Sequence[int],
    *,
    n_jobs: int = 1,
    backend: Backend = "local",
    verbose: bool = False,
) -> list:
    """Run every seed of ``protocol`` on ``backend``; one ``SeedResult`` per seed, in order.

    The first seed keeps its training sets (for plots). Results do not depend on the
    backend, ``n_jobs`` or the order in which tasks finish.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    resolve_backend(backend)
    if backend == "local" and n_jobs == 1:
        return [
            _run_task(protocol, s, None, i == 0)
            for i, s in enumerate(tqdm(seed_list, desc="seeds", disable=not verbose))
        ]
    tasks = _tasks(protocol, seed_list)
    if backend == "ray":
        parts = _run_ray(protocol, tasks, n_jobs, verbose)
    else:
        parts = Parallel(n_jobs=n_jobs, backend="loky", verbose=10 if verbose else 0)(
            delayed(_run_task)(protocol, seed, arms, keep) for seed, arms, keep in tasks
        )
    by_seed: dict[int, list] = {s: [] for s in seed_list}
    for (seed, arms, _), part in zip(tasks, parts, strict=True):
        by_seed[seed].append((arms[0], part))
    return [_merge(protocol, s, by_seed[s]) for s in seed_list]
