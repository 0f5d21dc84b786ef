"""Protocols: base sets, test sets, features and grouped splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from equisynth.evaluation.datasets import ACTG175_DROPPED, load_actg175, load_patient_treatment
from equisynth.evaluation.models import feature_columns, make_downstream_model
from equisynth.evaluation.protocols import (
    GenericProtocol,
    MCRAGEProtocol,
    check_arms,
    fill_to_max_conditions,
)
from equisynth.evaluation.protocols.selection import CheckpointSelectedGenerator, _real_row_mask
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
    arms = ("random_oversample", "smote", "mcrage", "smote_mcrage")
    protocol = _mcrage(patient_treatment, arms=arms, generator="empirical")
    protocol.validate()
    split = protocol.split(0)
    base = split.base.reset_index(drop=True)
    for arm in arms:
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
    ds = load_actg175()
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


def test_holdout_holds_only_rows_no_arm_trains_on(patient_treatment):
    protocol = _mcrage(patient_treatment)
    protocol.validate()
    split = protocol.split(0)
    assert not set(split.holdout.index) & set(split.base.index)
    assert set(split.test.index) <= set(split.holdout.index)
    left_out = set(split.control.index) - set(split.base.index)
    assert left_out <= set(split.holdout.index)
    # the left-out training rows are the 90% of female rows not kept
    assert (split.control.loc[sorted(left_out), "SEX"] == "F").all()


def test_actg175_demo_table_has_no_outcome_leak():
    ds = load_actg175()
    assert not set(ACTG175_DROPPED) & set(ds.frame.columns)
    assert {"days", "cd420", "cd820", "cd496", "r", "offtrt", "pidnum"} <= set(ACTG175_DROPPED)
    assert ds.target == "cens" and set(ds.frame["cens"]) == {0, 1}
    assert set(ds.frame["race"]) == {"white", "non-white"}
    assert set(ds.frame["gender"]) == {"female", "male"}
    assert len(ds.frame) == 2139 and not ds.frame.isna().any().any()


def test_model_selection_validates_on_real_rows_only():
    rng = np.random.default_rng(0)
    real = pd.DataFrame(
        {"x": rng.normal(size=200), "s": rng.choice(["F", "M"], 200), "y": rng.integers(0, 2, 200)}
    )
    extra = real.sample(150, random_state=1).assign(x=lambda d: d["x"] + 0.01)  # SMOTE-like rows
    table = pd.concat([real, extra], ignore_index=True)
    mask = _real_row_mask(table, real)
    assert mask[:200].all() and not mask[200:].any()
    gen = CheckpointSelectedGenerator(
        target="y",
        positive=1,
        sensitive=["s"],
        features=["x", "s"],
        classifier="lr",
        generator_params={"n_iter": 20, "batch_size": 64, "hidden": (16,), "sample_steps": 5},
        eval_every=10,
        real_rows=real,
        random_state=0,
    )
    fit_part, val_part = gen._validation_split(table, ["y", "s"], np.random.default_rng(0))
    assert len(val_part) == 50 and len(fit_part) == 300
    # no synthetic row is ever scored: every validation row is a real row
    assert len(val_part.merge(real, how="inner")) == len(val_part)
    gen.fit(table, condition_on=["y", "s"])
    assert [h["step"] for h in gen.history_] == [10, 20]
    assert gen.best_["f1"] == max(h["f1"] for h in gen.history_)
    assert sum(gen.validation_counts_.values()) == 50
    out = gen.sample(pd.DataFrame({"y": [1, 0], "s": ["F", "M"]}), random_state=0)
    assert list(out.columns) == ["x", "s", "y"] and out["s"].tolist() == ["F", "M"]


def test_search_budget_limits_the_settings_tried():
    def grid(param_grid, budget):
        g = CheckpointSelectedGenerator(
            target="y", positive=1, sensitive=["s"], features=["x"], param_grid=param_grid,
            search_budget=budget,
        )  # fmt: skip
        return g._grid(np.random.default_rng(0))

    assert grid(None, 3) == [{}]
    assert grid([{"guidance_scale": 1.0}, {"guidance_scale": 2.0}, {"lr": 1e-3}], 2) == [
        {"guidance_scale": 1.0},
        {"guidance_scale": 2.0},
    ]
    full = grid({"guidance_scale": [1.0, 2.0], "lr": [1e-3, 2e-3]}, 4)
    assert len(full) == 4 and len({tuple(sorted(d.items())) for d in full}) == 4
    drawn = grid({"guidance_scale": [1.0, 1.5, 2.0, 3.0], "lr": [1e-3, 2e-3]}, 3)
    assert len(drawn) == 3 and all(d["guidance_scale"] in (1.0, 1.5, 2.0, 3.0) for d in drawn)


def test_equalize_groups_strategy_reaches_every_resampling_arm(patient_treatment):
    """With sampling_strategy="equalize-groups" each arm's women reach the men's count and keep
    their own outcome prevalence (fill-to-max would move both sexes to 50% inpatients)."""
    protocol = _mcrage(
        patient_treatment,
        arms=["imbalanced", "random_oversample", "smote", "mcrage"],
        generator="empirical",
        sampling_strategy="equalize-groups",
    )
    protocol.validate()
    split = protocol.split(0)
    base = split.base
    prev_f = (base.loc[base["SEX"] == "F", "SOURCE"] == "in").mean()
    rng = np.random.default_rng(0)
    for arm in ("random_oversample", "smote", "mcrage"):
        train = protocol.training_set(arm, split, rng)
        sizes = train["SEX"].value_counts()
        assert sizes["F"] == sizes["M"] == (base["SEX"] == "M").sum(), arm
        women = train[train["SEX"] == "F"]
        assert abs((women["SOURCE"] == "in").mean() - prev_f) < 0.01, arm
        men = train[train["SEX"] == "M"]
        assert not men["is_synthetic"].any(), arm  # the larger group gets no new rows


def test_sampling_strategy_is_validated(patient_treatment):
    for bad in ("balanced", 0.0, 1.5, True):
        with pytest.raises(ConfigError, match="sampling_strategy"):
            _mcrage(patient_treatment, sampling_strategy=bad).validate()
