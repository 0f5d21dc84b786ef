"""TabularEncoder: round trips, ranges, missing values, state, quantile vs standard."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from equisynth.data.encoding import TabularEncoder
from equisynth.data.schema import infer_schema
from equisynth.exceptions import DataError

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _read(name, nrows=None):
    folder = DATA / name
    if not folder.exists():
        pytest.skip(f"shared data folder {folder} absent")
    csv = next(p for p in sorted(folder.glob("*.csv*")) if "IDs_mapping" not in p.name)
    df = pd.read_csv(csv, keep_default_na=False, nrows=nrows, low_memory=False)
    df = df.mask(df.astype(str) == "?")
    return df.dropna(axis=1, how="all").infer_objects()


def _toy(n=400, seed=0):
    rng = np.random.default_rng(seed)
    nf = rng.integers(0, 50, n).astype(float)
    nf[rng.random(n) < 0.2] = np.nan
    x = np.round(rng.lognormal(0, 1, n), 2)
    x[rng.random(n) < 0.1] = np.nan
    c = rng.choice(["a", "b", "c", None], n)
    return pd.DataFrame(
        {
            "x": x,
            "n": rng.integers(0, 100, n),
            "nf": nf,
            "b": rng.random(n) < 0.3,
            "c": c,
            "cat": pd.Categorical(rng.choice(["u", "v", "w"], n)),
        }
    )


def _check_roundtrip(df, enc):
    t = enc.transform(df)
    assert t.x_num.dtype == np.float32 and t.x_cat.dtype == np.int64
    back = enc.inverse_transform(t.x_num, t.x_cat)
    assert list(back.columns) == list(df.columns)
    for col in df.columns:
        spec = enc.schema_[col]
        if spec.kind in ("continuous", "integer"):
            a = pd.to_numeric(df[col]).to_numpy(float)
            b = pd.to_numeric(back[col]).to_numpy(float)
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
            # float32 normal scores: exact up to ~1e-6 of the range (e.g. 8-digit ids)
            span = spec.maximum - spec.minimum
            tol = (0 if spec.kind == "integer" else 10.0 ** -(spec.decimals or 0)) + 1e-6 * span
            assert np.nanmax(np.abs(a - b)) <= tol + 1e-9, col
        else:
            # missing restored as NaN whatever the input's marker (None, NaN, pd.NA): compare the
            # missing masks, then the labels of the other rows
            miss = df[col].isna().to_numpy()
            np.testing.assert_array_equal(back[col].isna().to_numpy(), miss)
            pd.testing.assert_series_equal(
                back[col][~miss], df[col][~miss], check_names=False, check_dtype=False
            )
    return back


def test_roundtrip_toy_and_dtypes():
    df = _toy()
    enc = TabularEncoder(random_state=0).fit(df, infer_schema(df))
    back = _check_roundtrip(df, enc)
    assert back["n"].dtype == np.int64 and back["b"].dtype == bool
    assert back["cat"].dtype == "category" and back["x"].dtype == np.float64
    assert "nf__missing" in enc.cat_columns_ and "x__missing" in enc.cat_columns_


def test_samples_stay_in_range_and_missing_rate():
    df = _toy(2000, seed=1)
    enc = TabularEncoder(random_state=0).fit(df, infer_schema(df))
    rng = np.random.default_rng(2)
    n = 4000
    x_num = rng.normal(0, 3, (n, len(enc.num_columns_)))
    t = enc.transform(df)
    x_cat = t.x_cat[rng.integers(0, len(df), n)]
    out = enc.inverse_transform(x_num, x_cat)
    for col in enc.num_columns_:
        assert out[col].min() >= df[col].min() and out[col].max() <= df[col].max()
        assert abs(out[col].isna().mean() - df[col].isna().mean()) < 0.03


def test_state_roundtrip():
    df = _toy()
    enc = TabularEncoder(random_state=0).fit(df, infer_schema(df))
    config, arrays = enc.get_state()
    import json

    enc2 = TabularEncoder.from_state(json.loads(json.dumps(config)), arrays)
    t = enc.transform(df)
    pd.testing.assert_frame_equal(
        enc.inverse_transform(t.x_num, t.x_cat), enc2.inverse_transform(t.x_num, t.x_cat)
    )
    assert enc2.cardinalities_ == enc.cardinalities_


def test_unseen_level_names_column():
    df = _toy()
    enc = TabularEncoder().fit(df, infer_schema(df))
    bad = df.copy()
    bad.loc[0, "c"] = "zzz"
    with pytest.raises(DataError, match=r"'c'.*'zzz'"):
        enc.transform(bad)


def test_quantile_beats_standard_on_lognormal():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"v": rng.lognormal(0, 1, 3000)})
    schema = infer_schema(df)
    ks = {}
    for method in ("quantile", "standard"):
        enc = TabularEncoder(numeric_transform=method).fit(df, schema)
        z = np.random.default_rng(1).normal(size=(3000, 1))
        out = enc.inverse_transform(z, np.zeros((3000, 0), dtype=np.int64))
        ks[method] = ks_2samp(out["v"], df["v"]).statistic
    assert ks["quantile"] < 0.05 < ks["standard"]


@pytest.mark.parametrize(("name", "nrows"), [("patient_treatment", None), ("diabetes130", 5000)])
def test_roundtrip_real(name, nrows):
    import warnings

    df = _read(name, nrows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        schema = infer_schema(df)
    enc = TabularEncoder(random_state=0).fit(df, schema)
    _check_roundtrip(df, enc)
