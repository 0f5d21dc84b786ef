"""Property-based fuzzing of the Python API with hostile tables.

Every case ends with an :class:`~equisynth.exceptions.EquisynthError` (a ``ValueError`` /
``TypeError`` subclass with a non-empty message) or with a correct result, checked against
the contract; never another exception type, never a hang (each case has a time limit).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reliability_support import GARBAGE_FILES, fuzz, hostile_tables, record, time_limit

from equisynth.data.encoding import TabularEncoder
from equisynth.data.schema import infer_schema
from equisynth.exceptions import EquisynthError
from equisynth.io import read_table
from equisynth.resampling import MCRAGE, StrataOversampler


def tiny_generator():
    from equisynth.generators.tabular import TabularDiffusionGenerator

    return TabularDiffusionGenerator(
        n_iter=2, timesteps=8, hidden=(16,), dim_t=8, batch_size=32, sample_steps=2, random_state=0
    )


def expect_clean_error(exc: BaseException) -> None:
    """The only acceptable failure: an EquisynthError (ValueError/TypeError) with a message."""
    assert isinstance(exc, EquisynthError), f"{type(exc).__name__}: {exc}"
    assert isinstance(exc, ValueError | TypeError)
    assert str(exc).strip(), "empty error message"


def _split(df: pd.DataFrame, target):
    if target not in df.columns:
        return df, pd.Series(np.zeros(len(df)), name="absent_target")
    y = df[target]
    if isinstance(y, pd.DataFrame):  # duplicated target name
        y = y.iloc[:, 0]
    return df.drop(columns=[target]), y


def _check_resampled(X: pd.DataFrame, y: pd.Series, X_res, y_res, sampler) -> None:
    n = len(X)
    assert list(X_res.columns) == list(X.columns)
    assert len(X_res) == len(y_res) == len(sampler.synthetic_mask_)
    assert not sampler.synthetic_mask_[:n].any() and sampler.synthetic_mask_[n:].all()
    pd.testing.assert_frame_equal(
        X_res.iloc[:n].reset_index(drop=True), X.reset_index(drop=True), check_dtype=False
    )
    pd.testing.assert_series_equal(
        pd.Series(y_res).iloc[:n].reset_index(drop=True),
        y.reset_index(drop=True),
        check_dtype=False,
        check_names=False,
    )
    # every synthetic row belongs to an observed stratum
    strata = set(zip(y, X[sampler.condition_on_[1]], strict=True))
    synth = X_res.iloc[n:]
    got = set(zip(pd.Series(y_res).iloc[n:], synth[sampler.condition_on_[1]], strict=True))
    assert got <= strata


def _resample_case(name: str, sampler, df, target) -> None:
    X, y = _split(df, target)
    with time_limit(60), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            X_res, y_res = sampler.fit_resample(X, y)
        except Exception as exc:
            expect_clean_error(exc)
            record(name, "clean error")
            return
    _check_resampled(X, y, X_res, y_res, sampler)
    record(name, "result")


@fuzz(200)
@given(case=hostile_tables(), method=st.sampled_from(["smote", "random"]))
def test_fuzz_baselines(case, method):
    df, target, sensitive = case
    sampler = StrataOversampler(method=method, sensitive_features=[sensitive], random_state=0)
    _resample_case("api StrataOversampler.fit_resample", sampler, df, target)


@pytest.mark.slow
@fuzz(40)
@given(case=hostile_tables(max_rows=24))
def test_fuzz_mcrage(case):
    df, target, sensitive = case
    sampler = MCRAGE(sensitive_features=[sensitive], generator=tiny_generator(), random_state=0)
    _resample_case("api MCRAGE.fit_resample", sampler, df, target)


CONDITION_VALUES = st.lists(
    st.one_of(st.text(max_size=3), st.floats(), st.integers(-3, 3), st.none()),
    min_size=1,
    max_size=3,
)


@fuzz(40)
@given(case=hostile_tables(max_rows=24), hostile=CONDITION_VALUES)
def test_fuzz_generator_fit_sample(case, hostile):
    name = "api TabularDiffusionGenerator.fit/sample"
    df, target, sensitive = case
    gen = tiny_generator()
    with time_limit(60), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            gen.fit(df, condition_on=[target, sensitive])
        except Exception as exc:
            expect_clean_error(exc)
            record(name, "clean error")
            return
        conditions = df[[target, sensitive]].drop_duplicates().reset_index(drop=True)
        out = gen.sample(conditions, random_state=1)
        assert list(out.columns) == list(df.columns)
        assert len(out) == len(conditions)
        pd.testing.assert_frame_equal(out[[target, sensitive]], conditions, check_dtype=False)
        record(name, "result")
        bad = pd.DataFrame({target: hostile, sensitive: hostile[::-1]})
        try:
            out = gen.sample(bad, random_state=1)
        except Exception as exc:
            expect_clean_error(exc)
            record("api TabularDiffusionGenerator.sample (hostile conditions)", "clean error")
        else:  # only possible when every hostile condition is a training stratum
            assert len(out) == len(bad)
            record("api TabularDiffusionGenerator.sample (hostile conditions)", "result")


@fuzz(150)
@given(case=hostile_tables())
def test_fuzz_schema_and_encoder(case):
    name = "api infer_schema + TabularEncoder round trip"
    df, _, _ = case
    with time_limit(30), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            schema = infer_schema(df)
            enc = TabularEncoder(random_state=0).fit(df, schema)
            encoded = enc.transform(df)
        except Exception as exc:
            expect_clean_error(exc)
            record(name, "clean error")
            return
        assert schema.names == [str(c) for c in df.columns]
        assert np.isfinite(encoded.x_num).all(), "encoded numeric values must be finite"
        back = enc.inverse_transform(encoded.x_num, encoded.x_cat)
        assert list(back.columns) == list(df.columns)
        for spec in schema.columns:
            orig, got = df[spec.name], back[spec.name]
            assert orig.isna().tolist() == got.isna().tolist(), spec.name
            if spec.kind in ("binary", "categorical"):
                assert orig.dropna().tolist() == got.dropna().tolist(), spec.name
            else:
                # exact up to the decimals, and up to float32 precision of the normal scores
                # relative to the column's span (matters for extreme outliers only)
                a = orig.dropna().to_numpy(float)
                b = got.dropna().to_numpy(float)
                span = spec.maximum - spec.minimum
                atol = 10.0 ** -(spec.decimals or 0) + 1e-5 * span
                np.testing.assert_allclose(b, a, rtol=1e-6, atol=atol)
    record(name, "result")


@fuzz(120)
@given(content=GARBAGE_FILES, ext=st.sampled_from([".csv", ".tsv", ".parquet", ".csv.gz"]))
def test_fuzz_read_table(tmp_path_factory, content, ext):
    name = "api read_table (garbage bytes)"
    path = tmp_path_factory.mktemp("read") / f"in{ext}"
    path.write_bytes(content)
    with time_limit(20):
        try:
            df = read_table(path)
        except Exception as exc:
            expect_clean_error(exc)
            record(name, "clean error")
        else:
            assert isinstance(df, pd.DataFrame) and len(df) > 0 and df.shape[1] > 0
            record(name, "result")
    assert path.read_bytes() == content
