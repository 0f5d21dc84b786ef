"""Fidelity metrics separate a good generator from a bad one on data with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from equisynth.evaluation.quality import (
    association_differences,
    c2st_auc,
    column_distances,
    fidelity_report,
    knn_precision_recall,
    tstr_auc,
)
from equisynth.evaluation.quality._features import FeatureSpace
from equisynth.exceptions import ConfigError, DataError

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _patient_treatment() -> pd.DataFrame:
    path = DATA / "patient_treatment" / "patient_treatment.csv"
    if not DATA.is_dir():
        pytest.skip("shared data folder absent")
    return pd.read_csv(path)


def _mixed(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    df = pd.DataFrame(
        {
            "x": x,
            "y": 2 * x + rng.normal(0, 0.5, n),
            "g": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    df.loc[rng.random(n) < 0.1, "y"] = np.nan
    return df


def test_feature_space_handles_missing_unknown_levels_and_names_bad_column():
    real = _mixed(50, 0)
    space = FeatureSpace().fit(real)
    # x, y, y-missing indicator, 3 one-hot levels
    assert space.transform(real).shape == (50, 6)
    other = real.assign(g="zzz")
    assert np.all(space.transform(other)[:, 3:] == 0)
    assert not np.isnan(space.transform(real)).any()
    with pytest.raises(DataError, match="'x'"):
        space.transform(real.assign(x="text"))


def test_c2st_real_vs_real_near_half_and_shifted_near_one():
    df = _patient_treatment()
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(df))
    a, b = df.iloc[perm[:600]], df.iloc[perm[600:1200]]
    same = c2st_auc(a, b, random_state=0)
    assert abs(same.auc - 0.5) < 0.08
    assert same.n_per_class == 600 and same.auc_sd > 0
    shifted = b.assign(HAEMOGLOBINS=b["HAEMOGLOBINS"] + 3.0)
    assert c2st_auc(a, shifted, random_state=0).auc > 0.95
    # logistic regression too, and the larger set is subsampled to balance the classes
    res = c2st_auc(a, df.iloc[perm[600:]], classifier="lr", random_state=0)
    assert res.n_per_class == 600 and abs(res.auc - 0.5) < 0.08


def test_c2st_rejects_bad_options():
    df = _mixed(40, 0)
    with pytest.raises(ConfigError, match="classifier"):
        c2st_auc(df, df, classifier="svm")
    with pytest.raises(ConfigError, match="cv"):
        c2st_auc(df, df, cv=1)
    with pytest.raises(DataError, match=r"\['g'\]"):
        c2st_auc(df, df.drop(columns="g"))


def test_column_distances_zero_for_identical_large_for_shifted():
    real = _mixed(500, 1)
    same = column_distances(real, real.sample(frac=1.0, random_state=0))
    assert set(same["metric"]) >= {"ks", "tv"}
    assert np.allclose(same["value"], 0.0)
    other = _mixed(500, 2, shift=3.0).assign(g="a")
    d = column_distances(real, other).set_index(["metric", "column"])["value"]
    assert d[("ks", "x")] > 0.8
    assert d[("tv", "g")] == pytest.approx(0.5, abs=0.06)  # P(g != a) in the real table


def test_association_difference_detects_broken_dependence():
    real = _mixed(800, 3)
    assert association_differences(real, real)["value"].max() == pytest.approx(0.0)
    rng = np.random.default_rng(0)
    broken = real.assign(y=rng.permutation(real["y"].to_numpy()))
    d = association_differences(real, broken).set_index("column")["value"]
    assert d["x|y"] > 0.8
    assert d["x|g"] < 0.1


def test_knn_precision_recall_mode_collapse():
    real = _mixed(800, 4).drop(columns="g")
    good = _mixed(800, 5).drop(columns="g")
    p, r = knn_precision_recall(real, good, random_state=0)
    assert p > 0.85 and r > 0.85
    collapsed = good[good["x"].between(-0.3, 0.3)]
    p, r = knn_precision_recall(real, collapsed, random_state=0)
    assert p > 0.85 and r < 0.5


def test_tstr_matches_trtr_for_real_data_and_fails_for_label_noise():
    df = _patient_treatment().sample(1200, random_state=0)
    train, test = df.iloc[:600], df.iloc[600:]
    tstr, trtr = tstr_auc(train, train, target="SOURCE", real_test=test, random_state=0)
    assert tstr == pytest.approx(trtr) and trtr > 0.7
    rng = np.random.default_rng(0)
    noise = train.assign(SOURCE=rng.permutation(train["SOURCE"].to_numpy()))
    tstr_noise, _ = tstr_auc(train, noise, target="SOURCE", real_test=test, random_state=0)
    assert tstr_noise < 0.62


def test_fidelity_report_per_stratum_flags_the_bad_stratum():
    df = _patient_treatment().sample(1600, random_state=1)
    real, synth = df.iloc[:800], df.iloc[800:].copy()
    bad = (synth["SEX"] == "F").to_numpy()
    synth.loc[bad, "THROMBOCYTE"] = synth.loc[bad, "THROMBOCYTE"] * 3
    rep = fidelity_report(real, synth, strata=["SEX"], classifier="lr", cv=3, random_state=0)
    assert list(rep.columns) == ["metric", "stratum", "column", "value"]
    c2st = rep[rep["metric"] == "c2st_auc"].set_index("stratum")["value"]
    assert set(c2st.index) == {"all", "SEX=F", "SEX=M"}
    assert c2st["SEX=F"] > 0.9 and abs(c2st["SEX=M"] - 0.5) < 0.1
    ks = rep[(rep["metric"] == "ks") & (rep["column"] == "THROMBOCYTE")].set_index("stratum")
    assert ks.loc["SEX=F", "value"] > 0.5 > ks.loc["SEX=M", "value"]


def test_fidelity_report_heart_failure_small_strata_are_counted_not_scored():
    path = DATA / "heart_failure" / "heart_failure_clinical_records_dataset.csv"
    if not DATA.is_dir():
        pytest.skip("shared data folder absent")
    df = pd.read_csv(path).drop(columns="time").sample(frac=1.0, random_state=0)
    real, synth = df.iloc[:150], df.iloc[150:]
    rep = fidelity_report(
        real,
        synth,
        strata=["sex", "DEATH_EVENT"],
        target="DEATH_EVENT",
        classifier="lr",
        cv=3,
        min_rows=30,
        associations=False,
        random_state=0,
    )
    counts = rep[rep["metric"] == "n_real"].set_index("stratum")["value"]
    assert counts.drop("all").sum() == 150
    scored = set(rep.loc[rep["metric"] == "c2st_auc", "stratum"])
    small = {s for s in counts.index if s != "all" and counts[s] < 30}
    assert small and not (small & scored)
    assert "tstr_auc" in set(rep["metric"])
