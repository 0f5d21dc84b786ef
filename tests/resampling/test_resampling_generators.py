"""MCRAGE with real generators: the EmpiricalGenerator test double and a tiny diffusion model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from equisynth.generators.base import ConditionalGenerator, EmpiricalGenerator
from equisynth.resampling import MCRAGE


def table(n=200, seed=0):
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], size=n, p=[0.3, 0.7])
    y = pd.Series(rng.choice(["in", "out"], size=n), name="SOURCE")
    X = pd.DataFrame(
        {
            "HB": rng.normal(13, 2, size=n) + (sex == "M") * 2.0,
            "AGE": rng.integers(20, 90, n),
            "SEX": sex,
        }
    )
    return X, y


def test_empirical_generator_follows_protocol_and_keeps_strata():
    X, y = table()
    df = X.assign(SOURCE=y)
    gen = EmpiricalGenerator(random_state=0).fit(df, condition_on=["SOURCE", "SEX"])
    assert isinstance(gen, ConditionalGenerator)
    cond = pd.DataFrame({"SOURCE": ["in"] * 300, "SEX": ["F"] * 300})
    out = gen.sample(cond)
    assert list(out.columns) == list(df.columns) and (out.dtypes == df.dtypes).all()
    assert (out["SEX"] == "F").all() and (out["SOURCE"] == "in").all()
    real = df[(df.SEX == "F") & (df.SOURCE == "in")]["HB"]
    assert (
        abs(out["HB"].mean() - real.mean()) < 0.3
    )  # draws from the right stratum (M is ~2 higher)
    assert not np.isin(out["HB"], df["HB"]).all()  # jittered, not exact copies
    with pytest.raises(ValueError, match="not seen in fit"):
        gen.sample(pd.DataFrame({"SOURCE": ["x"], "SEX": ["F"]}))


def test_mcrage_with_a_tiny_diffusion_generator():
    pytest.importorskip("equisynth.data.encoding")
    from equisynth.generators.tabular import TabularDiffusionGenerator

    X, y = table()
    gen = TabularDiffusionGenerator(
        timesteps=50, n_iter=30, batch_size=64, hidden=(32, 32), sample_steps=5
    )
    sampler = MCRAGE(sensitive_features=["SEX"], generator=gen, random_state=0)
    X_res, y_res = sampler.fit_resample(X, y)
    counts = pd.crosstab(y_res.to_numpy(), X_res["SEX"].to_numpy()).to_numpy()
    assert (counts == counts.max()).all()
    assert (X_res.dtypes == X.dtypes).all()
    pd.testing.assert_frame_equal(X_res.iloc[: len(X)], X)
    assert sampler.generator_ is not gen and sampler.generator_.random_state is not None
