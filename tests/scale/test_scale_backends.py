"""Experiments give the same results.csv on one process, local worker processes, and Ray."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from equisynth.evaluation.backends import map_seeds, resolve_backend
from equisynth.evaluation.protocols import SeedResult
from equisynth.evaluation.runner import run_experiment
from equisynth.exceptions import ConfigError

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def toy_protocol():
    """A protocol whose arms draw random numbers from (seed, arm): any task mix-up shows.

    Defined in a function so that worker processes receive it by value (cloudpickle).
    """

    @dataclasses.dataclass
    class Toy:
        arms: list
        name: str = "toy"
        allowed_arms: tuple = ("a", "b", "c")

        def validate(self):
            return None

        def run_seed(self, seed, *, keep_training_sets=False):
            rng = np.random.default_rng(seed)
            arm_seeds = {arm: int(rng.integers(2**31)) for arm in self.allowed_arms}
            rows, sets = [], {}
            for arm in self.arms:
                value = np.random.default_rng(arm_seeds[arm]).normal(size=2)
                for metric, v in zip(("f1", "auroc"), value, strict=True):
                    rows.append({"seed": seed, "arm": arm, "metric": metric, "group": "all",
                                 "value": float(v)})  # fmt: skip
                if keep_training_sets:
                    sets[arm] = pd.DataFrame({"v": value, "is_synthetic": [False, True]})
            return SeedResult(seed=seed, rows=pd.DataFrame(rows), training_sets=sets,
                              seconds=dict.fromkeys(self.arms, 0.0))  # fmt: skip

    return Toy(arms=["c", "a", "b"])


def results_csv(result) -> str:
    return result.results.to_csv(index=False)


def test_local_processes_give_the_results_of_one_process():
    protocol = toy_protocol()
    one = run_experiment(protocol, seeds=[3, 1, 2], n_jobs=1)
    two = run_experiment(protocol, seeds=[3, 1, 2], n_jobs=2)
    assert results_csv(one) == results_csv(two)
    assert one.results["seed"].unique().tolist() == [3, 1, 2]
    assert one.results["arm"].unique().tolist() == ["c", "a", "b"]  # the protocol's order
    assert set(two.training_sets) == {"a", "b", "c"}  # first seed's sets, all arms
    assert one.results["value"].nunique() == len(one.results)  # tasks differ


def test_backend_errors_name_the_fix():
    with pytest.raises(ConfigError, match="'local' or 'ray'"):
        resolve_backend("dask")
    with pytest.raises(ConfigError, match="'local' or 'ray'"):
        map_seeds(toy_protocol(), [0], backend="spark")


@pytest.mark.slow
def test_ray_gives_the_results_of_local_processes():
    ray = pytest.importorskip("ray")
    protocol = toy_protocol()
    local = run_experiment(protocol, seeds=3, n_jobs=2)
    on_ray = run_experiment(protocol, seeds=3, n_jobs=2, backend="ray")
    assert results_csv(local) == results_csv(on_ray)
    assert not ray.is_initialized()  # the local instance it started is shut down
    real = DATA / "patient_treatment" / "patient_treatment.csv"
    try:
        import equisynth.fairness.metrics  # noqa: F401
    except ImportError:
        return  # the real protocol needs the fairness metrics
    if not real.is_file():
        return
    from equisynth.evaluation.datasets import load_patient_treatment
    from equisynth.evaluation.protocols import MCRAGEProtocol

    ds = load_patient_treatment(real)
    mcrage = MCRAGEProtocol(data=ds.frame, target=ds.target, positive=ds.positive,
                            sensitive=list(ds.sensitive), classifier="lr",
                            arms=["original", "imbalanced", "random_oversample"])  # fmt: skip
    a = run_experiment(mcrage, seeds=2, n_jobs=1)
    b = run_experiment(mcrage, seeds=2, n_jobs=2, backend="ray")
    assert results_csv(a) == results_csv(b)
