"""TabularDiffusionGenerator: recovers known conditional distributions, saves and loads exactly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from equisynth.exceptions import ModelFileError, NotFittedError
from equisynth.generators.tabular import TabularDiffusionGenerator


def _toy(n=1200, seed=0):
    """Two strata with different Gaussian means, a skewed column and a categorical column."""
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b"], size=n, p=[0.5, 0.5])
    is_b = g == "b"
    x = np.where(is_b, rng.normal(3.0, 0.5, n), rng.normal(-1.0, 1.0, n))
    probs_a, probs_b = [0.7, 0.2, 0.1], [0.1, 0.3, 0.6]
    cat = np.where(
        is_b,
        rng.choice(["u", "v", "w"], size=n, p=probs_b),
        rng.choice(["u", "v", "w"], size=n, p=probs_a),
    )
    return pd.DataFrame({"g": g, "x": np.round(x, 3), "c": cat}), {"a": probs_a, "b": probs_b}


@pytest.fixture(scope="module")
def fitted():
    df, probs = _toy()
    gen = TabularDiffusionGenerator(
        n_iter=1500, batch_size=256, hidden=(128, 128), dim_t=64, lr=3e-3, random_state=0
    ).fit(df, condition_on=["g"])
    return gen, df, probs


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_recovers_known_conditional_distribution(fitted, sampler):
    gen, df, probs = fitted
    gen.set_params(sampler=sampler)
    try:
        conds = pd.DataFrame({"g": ["a"] * 600 + ["b"] * 600})
        out = gen.sample(conds, random_state=1)
    finally:
        gen.set_params(sampler="ddim")
    for level in ("a", "b"):
        real = df[df.g == level]
        synth = out[out.g == level]
        assert len(synth) == 600
        # numeric column: the per-stratum distributions are recovered (KS does not reject)
        ks = stats.ks_2samp(real.x, synth.x)
        assert ks.pvalue > 0.01, (level, ks)
        # and the strata are not confused: means are far apart across strata
        assert abs(synth.x.mean() - real.x.mean()) < 0.25
        # categorical column: known frequencies are recovered (chi-square does not reject)
        counts = synth.c.value_counts().reindex(["u", "v", "w"], fill_value=0).to_numpy()
        chi = stats.chisquare(counts, np.asarray(probs[level]) * len(synth))
        assert chi.pvalue > 0.01, (level, counts)


def test_ignoring_the_condition_would_fail(fitted):
    """The KS test above has power: stratum b's samples are rejected against stratum a's data."""
    gen, df, _ = fitted
    out = gen.sample({"g": "b"}, n=300, random_state=2)
    assert stats.ks_2samp(df[df.g == "a"].x, out.x).pvalue < 1e-6


def test_output_contract(fitted):
    gen, df, _ = fitted
    out = gen.sample(n=50, random_state=3)
    assert list(out.columns) == list(df.columns)
    assert (out.dtypes == df.dtypes).all()
    assert set(out.c) <= set(df.c)
    assert out.x.between(df.x.min(), df.x.max()).all()
    # decimals of the input (3) are kept
    assert np.allclose(out.x, out.x.round(3))


def test_same_seed_same_rows_and_different_seed_differs(fitted):
    gen, _, _ = fitted
    a = gen.sample({"g": "a"}, n=100, random_state=7)
    b = gen.sample({"g": "a"}, n=100, random_state=7)
    c = gen.sample({"g": "a"}, n=100, random_state=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_save_load_round_trip_gives_identical_samples(fitted, tmp_path):
    gen, _, _ = fitted
    path = gen.save(tmp_path / "model")
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    loaded = TabularDiffusionGenerator.load(path)
    conds = pd.DataFrame({"g": ["a", "b"] * 50})
    pd.testing.assert_frame_equal(
        gen.sample(conds, random_state=5), loaded.sample(conds, random_state=5)
    )


def test_load_refuses_tampered_weights_and_other_versions(fitted, tmp_path):
    gen, _, _ = fitted
    path = gen.save(tmp_path / "model")
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        TabularDiffusionGenerator.load(path)

    path2 = gen.save(tmp_path / "model2")
    doc = json.loads((path2 / "config.json").read_text())
    doc["format_version"] = 999
    (path2 / "config.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match="format version"):
        TabularDiffusionGenerator.load(path2)


def test_sample_before_fit_is_a_clear_error():
    with pytest.raises(NotFittedError, match="not fitted"):
        TabularDiffusionGenerator().sample(n=3)


def test_missing_values_are_reproduced():
    rng = np.random.default_rng(0)
    n = 800
    df = pd.DataFrame(
        {
            "g": rng.choice(["a", "b"], n),
            "x": np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n).round(2)),
            "c": pd.Series(rng.choice(["p", "q", None], n, p=[0.5, 0.3, 0.2]), dtype=object),
        }
    )
    gen = TabularDiffusionGenerator(
        n_iter=600, batch_size=256, hidden=(64, 64), dim_t=32, random_state=0
    ).fit(df, condition_on=["g"])
    out = gen.sample(n=2000, random_state=0)
    assert abs(out.x.isna().mean() - 0.3) < 0.06
    assert abs(out.c.isna().mean() - df.c.isna().mean()) < 0.06
