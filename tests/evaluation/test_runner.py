"""Multi-seed runner: reproducibility whatever the number of jobs, outputs on disk."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from equisynth.evaluation.datasets import load_patient_treatment
from equisynth.evaluation.protocols import MCRAGEProtocol
from equisynth.evaluation.runner import resolve_seeds, run_experiment
from equisynth.exceptions import ConfigError

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
PATIENT_TREATMENT = DATA / "patient_treatment" / "patient_treatment.csv"

pytest.importorskip("equisynth.fairness.metrics")


@pytest.fixture(scope="module")
def protocol() -> MCRAGEProtocol:
    if not PATIENT_TREATMENT.is_file():
        pytest.skip("shared data folder absent")
    ds = load_patient_treatment(PATIENT_TREATMENT)
    return MCRAGEProtocol(
        data=ds.frame,
        target=ds.target,
        positive=ds.positive,
        sensitive=list(ds.sensitive),
        arms=["original", "imbalanced", "random_oversample"],
        classifier="lr",
    )


def test_results_identical_with_one_and_two_jobs(protocol):
    pytest.importorskip("equisynth.resampling.baselines")
    one = run_experiment(protocol, seeds=[0, 1], n_jobs=1)
    two = run_experiment(protocol, seeds=[0, 1], n_jobs=2)
    pd.testing.assert_frame_equal(one.results, two.results)
    assert list(one.results.columns) == ["seed", "arm", "metric", "group", "value"]
    assert one.results["seed"].unique().tolist() == [0, 1]
    assert one.results["arm"].unique().tolist() == ["original", "imbalanced", "random_oversample"]
    # Seeds differ (different splits), so results are not copies of each other.
    by_seed = one.results[one.results["group"] == "all"].pivot_table(
        index=["arm", "metric"], columns="seed", values="value"
    )
    assert (by_seed[0] != by_seed[1]).any()
    # The first seed's training sets are kept for plots; the minority is rebalanced.
    sets = one.training_sets
    assert set(sets) == {"original", "imbalanced", "random_oversample"}
    share_f = {arm: (t["SEX"] == "F").mean() for arm, t in sets.items()}
    assert share_f["original"] == pytest.approx(0.5, abs=0.01)
    assert share_f["imbalanced"] < 0.1 < 0.4 < share_f["random_oversample"]


def test_resolve_seeds():
    assert resolve_seeds(3) == [0, 1, 2]
    assert resolve_seeds([5, 7]) == [5, 7]
    with pytest.raises(ConfigError, match="seeds"):
        resolve_seeds(0)
    with pytest.raises(ConfigError, match="distinct"):
        resolve_seeds([1, 1])
