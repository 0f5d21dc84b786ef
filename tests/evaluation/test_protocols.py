"""Protocols: base sets, test sets, features and grouped splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from equisynth.evaluation.datasets import load_kidney_transplant, load_patient_treatment
from equisynth.evaluation.models import feature_columns, make_downstream_model
from equisynth.evaluation.protocols import (
    GenericProtocol,
    MCRAGEProtocol,
    check_arms,
    fill_to_max_conditions,
)
from equisynth.exceptions import ConfigError, DataError

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
PATIENT_TREATMENT = DATA / "patient_treatment" / "patient_treatment.csv"


@pytest.fixture(scope="module")
def patient_treatment() -> pd.DataFrame:
    if not PATIENT_TREATMENT.is_file():
        pytest.skip("shared data folder absent")
    return load_patient_treatment(PATIENT_TREATMENT).frame


def _mcrage(df, arms=("original", "imbalanced", "random_oversample", "smote"), **kw):
    kw = {"target": "SOURCE", "positive": "in", "sensitive": ["SEX"], **kw}
    return MCRAGEProtocol(data=df, arms=list(arms), **kw)


def _key(frame: pd.DataFrame) -> set:
    return set(map(tuple, frame.drop(columns="is_synthetic", errors="ignore").to_numpy().tolist()))


@pytest.mark.parametrize("seed", [0, 1])
def test_mcrage_split_builds_the_imbalanced_base_set(patient_treatment, seed):
    protocol = _mcrage(patient_treatment)
    protocol.validate()
    split = protocol.split(seed)
    control, base, test = split.control, split.base, split.test
    # Balanced by undersampling: both sexes equally represented before the split.
    balanced = pd.concat([control, test])
    counts = balanced["SEX"].value_counts()
    assert counts["F"] == counts["M"] == patient_treatment["SEX"].value_counts().min()
    # Test set: disjoint from every training set (by row index of the input table).
    assert not set(test.index) & set(control.index)
    assert set(base.index) <= set(control.index)
    # Males untouched, females kept at 10% with the outcome prevalence preserved.
    assert (base["SEX"] == "M").sum() == (control["SEX"] == "M").sum()
    n_f = (control["SEX"] == "F").sum()
    assert abs((base["SEX"] == "F").sum() - 0.1 * n_f) <= 2
    prev_control = (control.loc[control["SEX"] == "F", "SOURCE"] == "in").mean()
    prev_base = (base.loc[base["SEX"] == "F", "SOURCE"] == "in").mean()
    assert abs(prev_control - prev_base) < 0.05
    # Stratified test split keeps the SEX x SOURCE shares.
    share = lambda d: d.groupby(["SEX", "SOURCE"]).size() / len(d)  # noqa: E731
    assert np.allclose(share(test), share(control), atol=0.01)
    assert abs(len(test) - 0.2 * len(balanced)) <= 1


def test_mcrage_split_is_reproducible_and_seed_dependent(patient_treatment):
    protocol = _mcrage(patient_treatment)
    protocol.validate()
    a, b, c = protocol.split(3), protocol.split(3), protocol.split(4)
    assert a.base.index.equals(b.base.index) and a.test.index.equals(b.test.index)
    assert not a.test.index.equals(c.test.index)


def test_every_arm_shares_test_set_and_features_and_no_test_row_leaks(patient_treatment):
    from equisynth.evaluation.protocols._base import ProtocolBase  # noqa: F401

    protocol = _mcrage(patient_treatment, arms=("original", "imbalanced"))
    protocol.validate()
    split = protocol.split(0)
    rng = np.random.default_rng(0)
    test_rows = _key(split.test)
    for arm in ("original", "imbalanced"):
        train = protocol.training_set(arm, split, rng)
        assert list(train.columns) == [*patient_treatment.columns, "is_synthetic"]
        assert not (_key(train) & test_rows)
    assert protocol.features == [c for c in patient_treatment.columns if c != "SOURCE"]
    excluded = _mcrage(patient_treatment, include_sensitive=False)
    assert "SEX" not in excluded.features and "SOURCE" not in excluded.features


def test_resampled_arms_start_from_the_base_set(patient_treatment):
    pytest.importorskip("equisynth.resampling.baselines")
    protocol = _mcrage(patient_treatment, arms=("random_oversample", "smote"))
    protocol.validate()
    split = protocol.split(0)
    base = split.base.reset_index(drop=True)
    for arm in ("random_oversample", "smote"):
        train = protocol.training_set(arm, split, np.random.default_rng(1))
        real = train[~train["is_synthetic"]].drop(columns="is_synthetic").reset_index(drop=True)
        pd.testing.assert_frame_equal(real, base, check_dtype=False)
        # The female x outcome strata are filled up towards the male ones.
        assert (train["SEX"] == "F").sum() > 3 * (base["SEX"] == "F").sum()


def test_grouped_split_never_puts_a_patient_on_both_sides():
    rng = np.random.default_rng(0)
    n_patients = 120
    visits = rng.integers(1, 6, n_patients)
    pid = np.repeat(np.arange(n_patients), visits)
    df = pd.DataFrame(
        {
            "pid": pid,
            "x": rng.normal(size=len(pid)),
            "sex": np.repeat(rng.choice(["F", "M"], n_patients), visits),
            "y": rng.integers(0, 2, len(pid)),
        }
    )
    protocol = GenericProtocol(
        data=df, target="y", positive=1, sensitive=["sex"], arms=["real"], group_col="pid"
    )
    protocol.validate()
    assert "pid" not in protocol.features
    for seed in range(3):
        split = protocol.split(seed)
        assert not set(split.base["pid"]) & set(split.test["pid"])
        assert len(split.base) + len(split.test) == len(df)
        assert 0.1 < split.test["pid"].nunique() / n_patients < 0.3


def test_generic_protocol_scores_the_real_arm_on_demo_data():
    pytest.importorskip("equisynth.fairness.metrics")
    ds = load_kidney_transplant()
    protocol = GenericProtocol(
        data=ds.frame,
        target=ds.target,
        positive=ds.positive,
        sensitive=list(ds.sensitive),
        arms=["real"],
        classifier="lr",
    )
    out = protocol.run_seed(0, keep_training_sets=True)
    assert list(out.rows.columns) == ["seed", "arm", "metric", "group", "value"]
    assert set(out.rows["arm"]) == {"real"} and set(out.rows["seed"]) == {0}
    assert "all" in set(out.rows["group"])
    assert len(out.training_sets["real"]) + len(out.test) == len(ds.frame)


def test_bad_options_raise_clear_errors(patient_treatment):
    with pytest.raises(ConfigError, match="unknown arm"):
        check_arms(["smote", "gan"], ("smote", "mcrage"))
    with pytest.raises(DataError, match="'nope'"):
        _mcrage(patient_treatment.rename(columns={"SEX": "nope"})).validate()
    with pytest.raises(DataError, match="positive class"):
        _mcrage(patient_treatment, positive="yes").validate()
    with pytest.raises(DataError, match="group column 'pid'"):
        GenericProtocol(
            data=patient_treatment,
            target="SOURCE",
            positive="in",
            sensitive=["SEX"],
            arms=["real"],
            group_col="pid",
        ).validate()


def test_fill_to_max_conditions_fills_every_stratum_to_the_largest():
    df = pd.DataFrame({"s": ["a"] * 5 + ["b"] * 2 + ["c"], "y": [0] * 8})
    cond = fill_to_max_conditions(df, ["s", "y"])
    after = pd.concat([df, cond]).groupby("s").size()
    assert after.tolist() == [5, 5, 5]


def test_downstream_model_handles_categoricals_and_missing_values():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"age": rng.normal(50, 10, 200), "sex": rng.choice(["F", "M"], 200)})
    X.loc[::7, "age"] = np.nan
    y = (X["sex"] == "F").to_numpy()
    for name in ("rf", "lr", "hgb"):
        model = make_downstream_model(name, X, random_state=0).fit(X, y)
        assert model.score(X, y) > 0.95  # sex is one-hot encoded and used
    assert feature_columns(["a", "b", "y"], target="y", sensitive=["b"]) == ["a", "b"]
    with pytest.raises(ConfigError, match="classifier"):
        make_downstream_model("svm", X)
