"""End-to-end: train on a 2-condition toy and check both samplers recover each condition."""

import numpy as np
import pytest
import torch
from scipy import stats

from equisynth.diffusion import (
    GaussianDiffusion,
    MLPDenoiser,
    MultinomialDiffusion,
    Trainer,
    linear_betas,
    sample,
)

FREQS = {0: np.array([0.7, 0.2, 0.1]), 1: np.array([0.1, 0.2, 0.7])}
MEANS = {0: -2.0, 1: 2.0}


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    n = 2000
    cond = rng.integers(0, 2, n)
    x = np.where(cond == 0, -2.0, 2.0) + 0.5 * rng.standard_normal(n)
    cat = np.array([rng.choice(3, p=FREQS[int(c)]) for c in cond])
    betas = linear_betas(100, 1e-4, 0.1)
    g, m = GaussianDiffusion(betas), MultinomialDiffusion([3], betas)
    with torch.random.fork_rng():  # seeded weight init without touching the global RNG
        torch.manual_seed(0)
        model = MLPDenoiser(1, [3], 2, hidden=(64, 64), dim_t=32)
    gen = torch.Generator().manual_seed(1)
    tr = Trainer(
        n_iter=600, batch_size=256, lr=3e-3, ema_decay=0.99, cond_drop_prob=0.1, log_every=50
    )
    res = tr.fit(
        model,
        g,
        m,
        torch.tensor(x[:, None], dtype=torch.float32),
        torch.tensor(cat[:, None]),
        torch.tensor(cond),
        gen,
    )
    return res.ema_model, g, m, res


def _draw(model, g, m, c, method, steps=None, w=1.0, seed=3, n=1500):
    cond = torch.full((n,), c, dtype=torch.long)
    return sample(
        model,
        g,
        m,
        cond,
        n_steps=steps,
        method=method,
        guidance_scale=w,
        generator=torch.Generator().manual_seed(seed),
        d_num=1,
        cardinalities=[3],
    )


@pytest.mark.parametrize("method,steps", [("ddpm", None), ("ddim", 25)])
def test_recovers_each_condition(trained, method, steps):
    model, g, m, res = trained
    assert res.loss_history[-1][1] < res.loss_history[0][1]
    for c in (0, 1):
        xn, xc = _draw(model, g, m, c, method, steps)
        xs = xn[:, 0].numpy()
        assert abs(xs.mean() - MEANS[c]) < 0.3
        ks = stats.kstest(xs, "norm", args=(MEANS[c], 0.5)).statistic
        assert ks < 0.12, (method, c, ks)
        counts = np.bincount(xc[:, 0].numpy(), minlength=3)
        obs = counts / counts.sum()
        assert np.abs(obs - FREQS[c]).max() < 0.1, (method, c, obs)


def test_unconditional_sampling_fails_the_same_checks(trained):
    # guidance_scale=0 ignores the condition: the thresholds above must then reject the samples
    model, g, m, _ = trained
    xn, xc = _draw(model, g, m, 0, "ddim", 25, w=0.0)
    assert abs(float(xn.mean()) - MEANS[0]) > 1.0
    obs = np.bincount(xc[:, 0].numpy(), minlength=3) / xc.shape[0]
    assert np.abs(obs - FREQS[0]).max() > 0.15


def test_same_seed_identical_and_w1_is_conditional(trained):
    model, g, m, _ = trained
    a = _draw(model, g, m, 1, "ddim", 10, seed=5, n=200)
    b = _draw(model, g, m, 1, "ddim", 10, seed=5, n=200)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = _draw(
        model, g, m, 1, "ddim", 10, w=1.0 + 1e-12, seed=5, n=200
    )  # goes through the batched CFG path
    torch.testing.assert_close(a[0], c[0], rtol=1e-4, atol=1e-4)
    assert (a[1] == c[1]).float().mean() > 0.99
