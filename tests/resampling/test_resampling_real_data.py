"""Baselines on real data: same strata as MCRAGE, missing values survive SMOTE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from equisynth.generators.base import EmpiricalGenerator
from equisynth.resampling import MCRAGE, StrataOversampler

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="module")
def patients():
    path = DATA / "patient_treatment" / "patient_treatment.csv"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    df = pd.read_csv(path)
    return df.drop(columns="SOURCE"), df["SOURCE"]


def test_smote_fills_the_same_strata_as_mcrage(patients):
    X, y = patients
    smote = StrataOversampler(sensitive_features=["SEX"], method="smote", random_state=0)
    mcrage = MCRAGE(sensitive_features=["SEX"], generator=EmpiricalGenerator(), random_state=0)
    Xs, ys = smote.fit_resample(X, y)
    Xm, ym = mcrage.fit_resample(X, y)
    assert smote.deficits_ == mcrage.deficits_
    # SEX x SOURCE: F-in 802, F-out 1320, M-in 982, M-out 1308 -> every stratum to 1320.
    assert sum(smote.deficits_.values()) == 4 * 1320 - len(X)
    cs = pd.crosstab(ys.to_numpy(), Xs["SEX"].to_numpy())
    cm = pd.crosstab(ym.to_numpy(), Xm["SEX"].to_numpy())
    pd.testing.assert_frame_equal(cs, cm)
    assert (cs.to_numpy() == 1320).all()
    synth = Xs[smote.synthetic_mask_]
    assert (synth.dtypes == X.dtypes).all()
    assert (synth["AGE"] == synth["AGE"].round()).all()
    for col in X.columns.drop("SEX"):
        assert synth[col].between(X[col].min(), X[col].max()).all(), col
    # SMOTE interpolates within a stratum: mean haemoglobin of synthetic F-in rows stays near the real one.
    real_fin = X[(X["SEX"] == "F") & (y == "in")]["HAEMOGLOBINS"].mean()
    syn_fin = synth[(synth["SEX"] == "F") & (ys[smote.synthetic_mask_].to_numpy() == "in")][
        "HAEMOGLOBINS"
    ].mean()
    assert abs(syn_fin - real_fin) < 0.5


def test_missing_values_survive_smote():
    rng = np.random.default_rng(3)
    n = 600
    sex = rng.choice(["F", "M"], size=n, p=[0.25, 0.75])
    y = pd.Series(rng.integers(0, 2, size=n), name="y")
    lab = rng.normal(5, 1, size=n)
    lab[rng.random(n) < 0.3] = np.nan
    ward = rng.choice(np.array(["a", "b", None], dtype=object), size=n, p=[0.45, 0.45, 0.1])
    X = pd.DataFrame({"LAB": lab, "AGE": rng.integers(18, 90, size=n), "WARD": ward, "SEX": sex})
    s = StrataOversampler(sensitive_features=["SEX"], method="smote", random_state=0)
    X_res, _ = s.fit_resample(X, y)
    synth = X_res[s.synthetic_mask_]
    assert len(synth) > 200
    assert abs(synth["LAB"].isna().mean() - X["LAB"].isna().mean()) < 0.08
    assert synth["LAB"].notna().any() and synth["AGE"].notna().all()
    assert set(synth["WARD"].dropna()) <= {"a", "b"} and synth["WARD"].isna().any()


def test_small_strata_reduce_k_with_a_warning():
    X = pd.DataFrame({"A": np.arange(40.0), "SEX": ["F"] * 4 + ["M"] * 36})
    y = pd.Series([0, 1] * 20, name="y")
    with pytest.warns(UserWarning, match="k_neighbors reduced from 5 to 1"):
        X_res, _ = StrataOversampler(sensitive_features=["SEX"], random_state=0).fit_resample(X, y)
    assert len(X_res) == 4 * 18
