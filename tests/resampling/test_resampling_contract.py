"""Output contract, strategies and imbalanced-learn compatibility of the strata samplers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from equisynth.generators.base import EmpiricalGenerator
from equisynth.resampling import MCRAGE, StrataOversampler, make_resampler


def toy(n=240, seed=0):
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], size=n, p=[0.3, 0.7])
    y = (rng.random(n) < np.where(sex == "F", 0.25, 0.5)).astype(np.int64)
    X = pd.DataFrame(
        {
            "AGE": rng.integers(20, 90, size=n).astype(np.int64),
            "HB": rng.normal(13, 2, size=n) + y,
            "SEX": sex,
            "SMOKER": rng.random(n) < 0.3,
            "WARD": pd.Categorical(rng.choice(["a", "b", "c"], size=n)),
        },
        index=np.arange(100, 100 + n),
    )
    return X, pd.Series(y, name="OUTCOME", index=X.index)


def samplers():
    return [
        MCRAGE(sensitive_features=["SEX"], generator=EmpiricalGenerator(), random_state=0),
        StrataOversampler(sensitive_features=["SEX"], method="smote", random_state=0),
        StrataOversampler(sensitive_features=["SEX"], method="random", random_state=0),
    ]


def stratum_counts(X, y):
    return pd.crosstab(y.to_numpy(), X["SEX"].to_numpy())


@pytest.mark.parametrize("sampler", samplers(), ids=["mcrage", "smote", "random"])
def test_output_contract(sampler):
    X, y = toy()
    X_res, y_res = sampler.fit_resample(X, y)
    n = len(X)
    assert list(X_res.columns) == list(X.columns)
    assert (X_res.dtypes == X.dtypes).all()
    assert isinstance(y_res, pd.Series) and y_res.name == "OUTCOME" and y_res.dtype == y.dtype
    assert X_res.index.equals(pd.RangeIndex(len(X_res)))
    pd.testing.assert_frame_equal(X_res.iloc[:n], X.reset_index(drop=True))
    np.testing.assert_array_equal(y_res.iloc[:n].to_numpy(), y.to_numpy())
    mask = sampler.synthetic_mask_
    assert mask.dtype == bool and len(mask) == len(X_res)
    assert (
        not mask[:n].any() and mask[n:].all() and mask.sum() == sum(sampler.deficits_.values()) > 0
    )
    synth = X_res[mask]
    assert set(synth["SEX"]) <= set(X["SEX"])
    assert set(synth["WARD"].astype(str)) <= set(X["WARD"].astype(str))
    assert list(synth["WARD"].cat.categories) == list(X["WARD"].cat.categories)
    assert synth["AGE"].between(X["AGE"].min(), X["AGE"].max()).all()
    assert sampler.n_features_in_ == X.shape[1]
    assert list(sampler.feature_names_in_) == list(X.columns)


@pytest.mark.parametrize("sampler", samplers(), ids=["mcrage", "smote", "random"])
def test_auto_fills_every_stratum_to_the_largest(sampler):
    X, y = toy()
    before = stratum_counts(X, y)
    X_res, y_res = sampler.fit_resample(X, y)
    after = stratum_counts(X_res, y_res)
    assert (after.to_numpy() == before.to_numpy().max()).all()
    assert sampler.sampling_strategy_ == {
        k: int(before.to_numpy().max()) for k in sampler.deficits_
    }


def test_numpy_target_gives_numpy_target():
    X, y = toy()
    X_res, y_res = samplers()[1].fit_resample(X, y.to_numpy())
    assert isinstance(y_res, np.ndarray) and y_res.dtype == y.dtype and len(y_res) == len(X_res)


def test_equalize_groups_keeps_group_prevalence():
    X, y = toy()
    sampler = StrataOversampler(
        sensitive_features="SEX", method="random", sampling_strategy="equalize-groups"
    )
    X_res, y_res = sampler.set_params(random_state=0).fit_resample(X, y)
    sizes = X_res["SEX"].value_counts()
    assert sizes.max() - sizes.min() <= 1
    prev_before = y.groupby(X["SEX"].to_numpy()).mean()
    prev_after = y_res.groupby(X_res["SEX"].to_numpy()).mean()
    np.testing.assert_allclose(prev_after.to_numpy(), prev_before.to_numpy(), atol=0.01)


def test_ratio_dict_and_callable_strategies():
    X, y = toy()
    before = stratum_counts(X, y)
    largest = int(before.to_numpy().max())
    s = StrataOversampler(
        sensitive_features=["SEX"], method="random", sampling_strategy=0.8, random_state=0
    )
    after = stratum_counts(*s.fit_resample(X, y)).to_numpy()
    target = np.maximum(before.to_numpy(), 0.8 * largest)
    assert (np.abs(after - target) <= 1).all()

    s = StrataOversampler(sensitive_features=["SEX"], method="random", random_state=0)
    s.fit_resample(X, y)
    smallest = int(s.strata_counts_[s.strata_counts_ > 0].idxmin())
    wanted = int(s.strata_counts_[smallest]) + 7
    s.set_params(sampling_strategy={smallest: wanted}).fit_resample(X, y)
    assert s.deficits_ == {smallest: 7}

    def double_smallest(describe):
        return {smallest: wanted}

    s.set_params(sampling_strategy=double_smallest).fit_resample(X, y)
    assert s.deficits_ == {smallest: 7}


def test_pipeline_cross_val_and_clone():
    X, y = toy()
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["AGE", "HB"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["SEX", "SMOKER", "WARD"]),
        ]
    )
    sampler = MCRAGE(sensitive_features=["SEX"], generator=EmpiricalGenerator(), random_state=0)
    pipe = Pipeline(
        [("rebalance", sampler), ("prep", prep), ("clf", LogisticRegression(max_iter=500))]
    )
    pipe.fit(X, y)
    assert pipe.predict(X).shape == (len(X),)
    scores = cross_val_score(pipe, X, y, cv=3, scoring="roc_auc")
    assert np.all((scores > 0.5) & (scores <= 1.0))
    twin = clone(sampler)
    assert twin.get_params()["sensitive_features"] == ["SEX"] and not hasattr(twin, "strata_")
    twin.set_params(smote_first="random", random_state=3)
    assert twin.smote_first == "random" and twin.random_state == 3


def test_generator_is_cloned_and_seeded_runs_reproduce():
    X, y = toy()
    gen = EmpiricalGenerator()
    a = MCRAGE(sensitive_features=["SEX"], generator=gen, random_state=5)
    Xa, _ = a.fit_resample(X, y)
    assert not hasattr(gen, "data_") and a.generator_ is not gen
    Xb, _ = clone(a).fit_resample(X, y)
    pd.testing.assert_frame_equal(Xa, Xb)


@pytest.mark.parametrize("variant", [True, "random"])
def test_smote_first_trains_generator_on_augmented_table(variant):
    X, y = toy()
    s = MCRAGE(
        sensitive_features=["SEX"],
        generator=EmpiricalGenerator(),
        smote_first=variant,
        random_state=0,
    )
    X_res, y_res = s.fit_resample(X, y)
    assert len(s.generator_.data_) == len(X) + sum(s.deficits_.values())
    after = stratum_counts(X_res, y_res)
    assert (after.to_numpy() == after.to_numpy().max()).all()


def test_make_resampler():
    assert isinstance(make_resampler("mcrage", sensitive_features=["SEX"]), MCRAGE)
    assert make_resampler("random", sensitive_features=["SEX"]).method == "random"
    with pytest.raises(ValueError, match="mcrage"):
        make_resampler("gan", sensitive_features=["SEX"])


def test_empty_stratum_reported_and_small_stratum_warned_once():
    # (OUTCOME=1, SEX=F) has no row: it is skipped and reported; (0, F) has 6 rows: one warning
    X, y = toy()
    keep = ~((X["SEX"] == "F") & (y == 1))
    keep &= ~((X["SEX"] == "F") & (y == 0)) | (np.cumsum((X["SEX"] == "F") & (y == 0)) <= 6)
    X, y = X[keep], y[keep]
    sampler = MCRAGE(sensitive_features=["SEX"], generator=EmpiricalGenerator(), random_state=0)
    with pytest.warns(UserWarning) as record:
        X_res, y_res = sampler.fit_resample(X, y)
    messages = [str(w.message) for w in record if "has only" in str(w.message)]
    assert messages == [
        "stratum (OUTCOME=0, SEX='F') has only 6 rows (fewer than 10); synthetic rows for it "
        "rest on very few real rows"
    ]
    assert sampler.empty_strata_ == [(1, "F")]
    assert any(
        "no rows" in str(w.message) and "(OUTCOME=1, SEX='F')" in str(w.message) for w in record
    )
    assert ((y_res == 1) & (X_res["SEX"] == "F")).sum() == 0  # nothing invented for it
    assert len(X_res) - len(X) == sum(sampler.deficits_.values()) > 0
