"""TabularDiffusionGenerator: recovers known conditional distributions, saves and loads exactly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from equisynth.exceptions import ConfigError, ModelFileError, NotFittedError
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
        n_iter=800, batch_size=256, hidden=(128, 128), dim_t=64, lr=3e-3, random_state=0
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
        # categorical column: the stratum's frequencies are recovered. Two-sample chi-square
        # against the real rows of the stratum (the model learns the ~600 training rows, whose
        # frequencies differ from the generating ones by sampling noise: a one-sample test
        # against the generating probabilities would count that noise twice) ...
        levels = ["u", "v", "w"]
        counts = synth.c.value_counts().reindex(levels, fill_value=0).to_numpy()
        real_counts = real.c.value_counts().reindex(levels, fill_value=0).to_numpy()
        chi = stats.chi2_contingency(np.stack([counts, real_counts]))
        assert chi.pvalue > 0.01, (level, counts, real_counts)
        # ... and they are close to the generating probabilities
        assert np.abs(counts / len(synth) - np.asarray(probs[level])).max() < 0.06, counts


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


def _tiny_fit(df, device):
    return TabularDiffusionGenerator(
        n_iter=20, batch_size=64, hidden=(16,), dim_t=8, timesteps=20, device=device, random_state=0
    ).fit(df, condition_on=["g"])


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_model_trained_with_device_set_loads_on_cpu(tmp_path, device):
    df, _ = _toy(n=200)
    gen = _tiny_fit(df, device)
    path = gen.save(tmp_path / "model")
    saved = json.loads((path / "config.json").read_text())["config"]["params"]
    assert saved["device"] == device  # the fit-time option is recorded ...
    loaded = TabularDiffusionGenerator.load(path, device="cpu")
    assert loaded.device == "cpu"  # ... but load(device=...) decides where the weights go
    assert all(p.device.type == "cpu" for p in loaded.ema_model_.parameters())
    conds = pd.DataFrame({"g": ["a", "b"] * 10})
    if str(gen.device_) == "cpu":
        pd.testing.assert_frame_equal(
            gen.sample(conds, random_state=1), loaded.sample(conds, random_state=1)
        )
    else:  # trained on a GPU: same weights, CPU random streams differ from CUDA ones
        assert len(loaded.sample(conds, random_state=1)) == 20


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_model_trained_on_cuda_loads_on_cpu(tmp_path):
    df, _ = _toy(n=200)
    gen = _tiny_fit(df, "cuda")
    loaded = TabularDiffusionGenerator.load(gen.save(tmp_path / "model"), device="cpu")
    for a, b in zip(gen.ema_model_.parameters(), loaded.ema_model_.parameters(), strict=True):
        assert torch.equal(a.detach().cpu(), b)
    out = loaded.sample(pd.DataFrame({"g": ["a", "b"] * 10}), random_state=1)
    assert list(out.columns) == list(df.columns) and len(out) == 20


def test_bad_parameters_are_config_errors():
    df, _ = _toy(n=100)
    for bad in ({"eta": 1.5}, {"schedule": "quadratic"}, {"timesteps": 1}, {"sampler": "euler"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            TabularDiffusionGenerator(**bad).fit(df, condition_on=["g"])


def test_paper_rule_for_T_and_a_warning_when_the_process_does_not_reach_noise():
    df, _ = _toy(n=200)
    small = {"n_iter": 2, "batch_size": 32, "hidden": (8,), "dim_t": 8, "random_state": 0}
    gen = TabularDiffusionGenerator(timesteps="paper", **small).fit(df, condition_on=["g"])
    # cosine: beta_T = 0.999; diam = bounding-box diagonal of the encoded numeric column
    x = gen.encoder_.transform(df[gen.data_columns_]).x_num
    diameter = float(np.sqrt(((x.max(0) - x.min(0)) ** 2).sum()))
    assert gen.timesteps_ == int(np.ceil(64 * 0.999 * (1 + np.log1p(diameter))))
    with pytest.warns(UserWarning, match=r"keeps 9\d% of its signal"):
        # the same rule with the paper's linear schedule (beta_T = 0.02) gives a handful of steps
        TabularDiffusionGenerator(timesteps="paper", schedule="linear", **small).fit(
            df, condition_on=["g"]
        )


def test_verbose_shows_training_and_sampling_bars_with_eta(capsys):
    df, _ = _toy(n=200)
    gen = TabularDiffusionGenerator(
        n_iter=5,
        batch_size=32,
        hidden=(8,),
        dim_t=8,
        timesteps=20,
        sample_steps=4,
        random_state=0,
        verbose=True,
    ).fit(df, condition_on=["g"])
    gen.sample(n=10, random_state=0)
    err = capsys.readouterr().err
    assert "training" in err and "5/5" in err
    assert "sampling" in err and "4/4" in err
    assert "<" in err  # tqdm's elapsed<remaining (ETA) field
    gen.set_params(verbose=False)
    gen.sample(n=10, random_state=0)
    assert capsys.readouterr().err == ""
