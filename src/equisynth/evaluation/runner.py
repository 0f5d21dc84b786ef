"""Multi-seed runner: one protocol, N independent seeds, in parallel processes.

Each seed is a pure function of (protocol, seed): every random choice inside it is
drawn from generators seeded by that seed, so the results are identical whatever
the number of jobs and whatever the order in which seeds finish.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from equisynth.evaluation.protocols import ProtocolBase, SeedResult
from equisynth.evaluation.protocols._scoring import RESULT_COLUMNS
from equisynth.exceptions import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["ExperimentResult", "resolve_seeds", "run_experiment", "run_seeds"]


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` returns.

    Attributes
    ----------
    results : DataFrame
        Tidy long table ``seed, arm, metric, group, value`` sorted by seed, then arm order.
    training_sets : dict of str to DataFrame
        Each arm's training table of the first seed (with ``is_synthetic``), for plots.
    test : DataFrame or None
        The first seed's test set.
    holdout : DataFrame or None
        The first seed's real rows that no arm trained on (reference of the quality section).
    seconds : DataFrame
        Wall time of every (seed, arm).
    protocol : str
    arms : list of str
    wall_seconds : float
    """

    results: pd.DataFrame
    training_sets: dict[str, pd.DataFrame] = field(default_factory=dict)
    test: pd.DataFrame | None = None
    seconds: pd.DataFrame | None = None
    protocol: str = ""
    arms: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    holdout: pd.DataFrame | None = None


def resolve_seeds(seeds: int | Sequence[int]) -> list[int]:
    """``10`` -> ``[0, ..., 9]``; a sequence of non-negative ints is kept as is."""
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"seeds must be a positive number of seeds, got {seeds}")
        return list(range(seeds))
    out = [int(s) for s in seeds]
    if not out or any(s < 0 for s in out) or len(set(out)) != len(out):
        raise ConfigError(f"seeds must be distinct non-negative integers, got {list(seeds)}")
    return out


def _run_one(protocol: ProtocolBase, seed: int, keep: bool) -> SeedResult:
    return protocol.run_seed(seed, keep_training_sets=keep)


def run_experiment(
    protocol: ProtocolBase,
    *,
    seeds: int | Sequence[int] = 10,
    n_jobs: int = 1,
    verbose: bool = False,
) -> ExperimentResult:
    """Run ``protocol`` for every seed, ``n_jobs`` seeds at a time (loky processes).

    Parameters
    ----------
    protocol : MCRAGEProtocol or GenericProtocol
    seeds : int or sequence of int, default=10
        Number of seeds (0..N-1) or the seeds themselves.
    n_jobs : int, default=1
        Worker processes; ``-1`` uses every core. Results do not depend on it.
    verbose : bool, default=False
        Progress bar over seeds.

    Examples
    --------
    >>> from equisynth.evaluation.datasets import load_actg175
    >>> from equisynth.evaluation.protocols import GenericProtocol
    >>> ds = load_actg175()
    >>> p = GenericProtocol(data=ds.frame, target=ds.target, positive=ds.positive,
    ...                     sensitive=list(ds.sensitive), arms=["real"], classifier="lr")
    >>> run_experiment(p, seeds=2).results["seed"].unique().tolist()
    [0, 1]
    """
    if not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ConfigError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
    protocol.validate()
    seed_list = resolve_seeds(seeds)
    start = time.perf_counter()
    outs = run_seeds(protocol, seed_list, n_jobs=n_jobs, verbose=verbose)
    outs = sorted(outs, key=lambda r: seed_list.index(r.seed))
    results = pd.concat([o.rows for o in outs], ignore_index=True)[RESULT_COLUMNS]
    seconds = pd.DataFrame(
        [{"seed": o.seed, "arm": a, "seconds": t} for o in outs for a, t in o.seconds.items()]
    )
    first = outs[0]
    return ExperimentResult(
        results=results,
        training_sets=first.training_sets,
        test=first.test,
        seconds=seconds,
        protocol=protocol.name,
        arms=list(protocol.arms),
        wall_seconds=time.perf_counter() - start,
        holdout=first.holdout,
    )


def run_seeds(
    protocol: ProtocolBase, seeds: Sequence[int], *, n_jobs: int = 1, verbose: bool = False
) -> list[SeedResult]:
    """The seed loop: ``protocol.run_seed(seed)`` for every seed, keeping the first seed's
    training sets. This is the one place that decides where seeds run (here: in-process
    or joblib/loky worker processes); another backend only needs to replace it.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    if n_jobs == 1:
        return [
            _run_one(protocol, s, i == 0)
            for i, s in enumerate(tqdm(seeds, desc="seeds", disable=not verbose))
        ]
    tasks = (delayed(_run_one)(protocol, s, i == 0) for i, s in enumerate(seeds))
    return list(Parallel(n_jobs=n_jobs, backend="loky", verbose=10 if verbose else 0)(tasks))
