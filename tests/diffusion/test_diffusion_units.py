"""Unit tests of schedules, Gaussian / multinomial processes, denoiser and trainer state."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from equisynth.diffusion import (
    GaussianDiffusion,
    MLPDenoiser,
    MultinomialDiffusion,
    Trainer,
    cosine_betas,
    linear_betas,
    make_betas,
    paper_num_timesteps,
    sample,
)
from equisynth.exceptions import ConfigError


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_schedules_valid(kind):
    b = make_betas(kind, 200)
    assert b.dtype == torch.float64 and b.shape == (200,)
    assert bool(((b > 0) & (b < 1)).all())
    abar = torch.cumprod(1 - b, 0)
    assert bool((abar[1:] < abar[:-1]).all())
    if kind == "linear":
        assert bool((b[1:] > b[:-1]).all())
    else:
        assert bool((b[1:] >= b[:-1]).all())


def test_paper_rule_and_errors():
    # ceil(64 * 0.02 * (1 + log(1 + 10))) = ceil(1.28 * 3.3979) = ceil(4.349) = 5
    assert paper_num_timesteps(0.02, 10.0) == 5
    assert paper_num_timesteps(1.0, math.e - 1) == 128
    with pytest.raises(ConfigError, match="schedule kind"):
        make_betas("quadratic", 10)
    with pytest.raises(ConfigError, match="positive integer"):
        linear_betas(0)
    assert float(cosine_betas(10).max()) <= 0.999


def test_gaussian_q_sample_matches_closed_form():
    g = GaussianDiffusion(linear_betas(100, 1e-4, 0.05))
    gen = torch.Generator().manual_seed(0)
    n = 20000
    x0 = torch.full((n, 1), 1.5)
    t = torch.full((n,), 40)
    xt = g.q_sample(x0, t, torch.randn(n, 1, generator=gen))
    abar = float(torch.cumprod(1 - linear_betas(100, 1e-4, 0.05), 0)[40])
    assert abs(float(xt.mean()) - math.sqrt(abar) * 1.5) < 0.03
    assert abs(float(xt.var()) - (1 - abar)) < 0.03
    # predict_x0 inverts q_sample given the true noise; DDIM with eta=0 is then exact
    noise = torch.randn(n, 1, generator=gen)
    xt = g.q_sample(x0, t, noise)
    torch.testing.assert_close(g.predict_x0(xt, t, noise), x0, atol=1e-4, rtol=1e-4)
    x_prev = g.ddim_step(xt, t, torch.full((n,), -1), noise)
    torch.testing.assert_close(x_prev, x0, atol=1e-4, rtol=1e-4)


def test_multinomial_q_sample_marginals_chi_square():
    betas = linear_betas(50, 1e-3, 0.05)
    m = MultinomialDiffusion([4, 2], betas)
    abar = float(torch.cumprod(1 - betas, 0)[20])
    gen = torch.Generator().manual_seed(0)
    n = 20000
    x0 = torch.zeros(n, 2, dtype=torch.long)
    xt = m.q_sample(x0, torch.full((n,), 20), gen)
    for j, k in enumerate([4, 2]):
        expected = np.full(k, (1 - abar) / k)
        expected[0] += abar
        counts = np.bincount(xt[:, j].numpy(), minlength=k)
        p = stats.chisquare(counts, expected * n).pvalue
        assert p > 1e-3, (j, counts, expected)


def test_multinomial_posterior_normalised_and_one_step():
    betas = linear_betas(30, 1e-2, 0.2).to(torch.float64)
    m = MultinomialDiffusion([3, 5], betas)
    gen = torch.Generator().manual_seed(0)
    n = 64
    xt = m.one_hot(
        torch.stack(
            [torch.randint(0, 3, (n,), generator=gen), torch.randint(0, 5, (n,), generator=gen)], 1
        )
    )
    x0p = m.log_softmax(torch.randn(n, 8, generator=gen)).exp()
    t = torch.randint(1, 30, (n,), generator=gen)
    for s in (t - 1, torch.zeros_like(t) - 1, t // 2):
        post = m.posterior_probs(xt, t, s, x0p)
        torch.testing.assert_close(post[:, :3].sum(1), torch.ones(n))
        torch.testing.assert_close(post[:, 3:].sum(1), torch.ones(n))
    # jump of one: compare with the textbook single-step posterior built from beta_t directly
    post = m.posterior_probs(xt, t, t - 1, x0p)
    abar = torch.cumprod(1 - betas, 0).float()
    b = betas.float()[t].unsqueeze(1)
    ab_prev = abar[t - 1].unsqueeze(1)
    invk = torch.cat([torch.full((3,), 1 / 3), torch.full((5,), 1 / 5)])
    un = ((1 - b) * xt + b * invk) * (ab_prev * x0p + (1 - ab_prev) * invk)
    ref = torch.cat(
        [un[:, :3] / un[:, :3].sum(1, keepdim=True), un[:, 3:] / un[:, 3:].sum(1, keepdim=True)], 1
    )
    torch.testing.assert_close(post, ref, atol=1e-5, rtol=1e-5)


def test_multinomial_loss_zero_at_truth_and_positive_otherwise():
    m = MultinomialDiffusion([3], linear_betas(20, 1e-2, 0.2))
    x0 = torch.tensor([[0], [1], [2], [1]])
    t = torch.tensor([0, 5, 10, 19])
    xt = m.q_sample(x0, t, torch.Generator().manual_seed(0))
    good = 50.0 * m.one_hot(x0)
    assert float(m.loss(good, x0, xt, t)) < 1e-3
    assert float(m.loss(-good, x0, xt, t)) > 0.1


def test_denoiser_shapes_linear_head_and_gradient():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MLPDenoiser(3, [2, 4], 5, hidden=(32, 32), dim_t=16, dropout=0.1)
    n = 7
    eps, logits = model(
        torch.randn(n, 3), torch.zeros(n, 6), torch.arange(n), torch.tensor([0, 1, 2, 3, 4, 5, 5])
    )
    assert eps.shape == (n, 3) and logits.shape == (n, 6)
    assert isinstance(model.head, torch.nn.Linear)
    with (
        torch.no_grad()
    ):  # a linear head can output any value, e.g. far below GELU's minimum of -0.17
        model.head.bias.fill_(-5.0)
    eps, _ = model(
        torch.randn(n, 3), torch.zeros(n, 6), torch.arange(n), torch.zeros(n, dtype=torch.long)
    )
    assert float(eps.detach().max()) < -1.0
    eps.sum().backward()
    assert float(model.cond_emb.weight.grad[0].abs().sum()) > 0
    with pytest.raises(ConfigError, match="n_conditions"):
        MLPDenoiser(0, [], 2)


@pytest.mark.parametrize("d_num,cards", [(2, []), (0, [3, 2])])
def test_train_and_sample_without_one_part(d_num, cards):
    betas = linear_betas(10, 1e-3, 0.2)
    g, m = GaussianDiffusion(betas), MultinomialDiffusion(cards, betas)
    model = MLPDenoiser(d_num, cards, 2, hidden=(16,), dim_t=8)
    n = 50
    x_cat = torch.zeros(n, len(cards), dtype=torch.long)
    res = Trainer(n_iter=3, batch_size=8, log_every=1).fit(
        model,
        g,
        m,
        torch.randn(n, d_num),
        x_cat,
        torch.zeros(n, dtype=torch.long),
        torch.Generator().manual_seed(0),
    )
    assert len(res.loss_history) == 3 and all(np.isfinite(v) for _, v in res.loss_history)
    for method in ("ddpm", "ddim"):
        xn, xc = sample(
            res.ema_model,
            g,
            m,
            torch.tensor([0, 1, 2]),
            method=method,
            n_steps=4,
            guidance_scale=2.0,
            generator=torch.Generator().manual_seed(0),
            d_num=d_num,
            cardinalities=cards,
        )
        assert xn.shape == (3, d_num) and xc.shape == (3, len(cards))


def test_trainer_state_roundtrip_and_callback():
    betas = linear_betas(10, 1e-3, 0.2)
    g, m = GaussianDiffusion(betas), MultinomialDiffusion([2], betas)
    model = MLPDenoiser(1, [2], 2, hidden=(8,), dim_t=8)
    calls = []
    tr = Trainer(n_iter=4, batch_size=4, eval_every=2, callback=lambda s, mo, em: calls.append(s))
    tr.fit(
        model,
        g,
        m,
        torch.randn(20, 1),
        torch.zeros(20, 1, dtype=torch.long),
        torch.zeros(20, dtype=torch.long),
    )
    assert calls == [2, 4]
    state = tr.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values()) and int(state["step"]) == 4
    tr2 = Trainer(n_iter=4, batch_size=4)
    model2 = MLPDenoiser(1, [2], 2, hidden=(8,), dim_t=8)
    tr2.load_state_dict(model2, state)
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(a, b)
    s2 = tr2.state_dict()
    assert set(s2) == set(state) and all(torch.equal(s2[k], state[k]) for k in state)
    with pytest.raises(ConfigError, match="same non-zero number of rows"):
        tr.fit(
            model,
            g,
            m,
            torch.randn(5, 1),
            torch.zeros(4, 1, dtype=torch.long),
            torch.zeros(5, dtype=torch.long),
        )


def _oracle_sampling(m, prior, steps, *, exact, n=40000, seed=0):
    """Reverse-sample with the exact predictor p(x_0 | x_t) of a known prior over x_0."""
    gen = torch.Generator().manual_seed(seed)
    k = len(prior)
    prior_t = torch.tensor(prior, dtype=torch.float32)
    xc = m.sample_codes(m.invK.expand(n, -1), gen)
    for i, t_i in enumerate(steps):
        t_p = steps[i + 1] if i + 1 < len(steps) else -1
        t, tp = torch.full((1,), t_i), torch.full((1,), t_p)
        a_t = m._abar(t)
        lik = a_t * m.one_hot(xc) + (1 - a_t) / k  # q(x_t | x_0 = k) for every k
        post_x0 = prior_t * lik
        post_x0 = post_x0 / post_x0.sum(1, keepdim=True)  # exact p(x_0 | x_t)
        if exact:
            xc = m.posterior_step(xc, t, tp, torch.log(post_x0))
        else:  # the plug-in rule of Hoogeboom et al. / TabDDPM
            xc = m.sample_codes(m.posterior_probs(m.one_hot(xc), t, tp, post_x0), gen)
    return np.bincount(xc[:, 0].numpy(), minlength=k)


@pytest.mark.parametrize("stride", [1, 10])
def test_multinomial_reverse_process_recovers_prior_with_exact_predictor(stride):
    """With the Bayes-optimal x_0 predictor, ancestral and strided sampling return the prior;
    the plug-in posterior (without the 1 / q(x_t | x_0) weights) is visibly biased."""
    T = 100
    m = MultinomialDiffusion([3], cosine_betas(T))
    prior = [0.7, 0.2, 0.1]
    steps = list(range(T - 1, -1, -stride))
    counts = _oracle_sampling(m, prior, steps, exact=True)
    assert stats.chisquare(counts, np.asarray(prior) * counts.sum()).pvalue > 1e-3, counts
    biased = _oracle_sampling(m, prior, steps, exact=False)
    assert stats.chisquare(biased, np.asarray(prior) * biased.sum()).pvalue < 1e-6, biased


def test_denoiser_takes_codes_or_one_hot_with_the_same_result():
    cards = [3, 700, 2]
    m = MultinomialDiffusion(cards, linear_betas(10))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MLPDenoiser(2, cards, 3, hidden=(16,), dim_t=8)
    gen = torch.Generator().manual_seed(0)
    codes = torch.stack([torch.randint(0, k, (6,), generator=gen) for k in cards], 1)
    args = (torch.randn(6, 2, generator=gen), torch.arange(6), torch.tensor([0, 1, 2, 3, 0, 1]))
    a = model(args[0], m.one_hot(codes), *args[1:])
    b = model(args[0], codes, *args[1:])
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)
    b[1].sum().backward()  # the gathered rows receive gradient
    assert float(model.proj.weight.grad[:, 2:].abs().sum()) > 0


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_closed_form_multinomial_loss_equals_the_table_formula(schedule):
    """The fast KL (uniform posterior + two bumps) equals the full-table computation, gradients too."""
    gen = torch.Generator().manual_seed(0)
    T = 200
    m = MultinomialDiffusion([2, 5, 300], make_betas(schedule, T))
    n = 256
    for scale in (0.1, 5.0, 40.0):  # soft to very peaked predictions
        logits = (scale * torch.randn(n, m.total, generator=gen)).requires_grad_()
        x0 = torch.stack([torch.randint(0, k, (n,), generator=gen) for k in m.cardinalities], 1)
        t = torch.randint(0, T, (n,), generator=gen)
        t[:8], t[8:16] = 0, T - 1
        xt = m.q_sample(x0, t, gen)
        xt[:32] = x0[:32]  # both cases i == j and i != j
        fast = m.loss(logits, x0, xt, t)
        (g_fast,) = torch.autograd.grad(fast, logits)
        ref = m.loss_reference(logits, x0, xt, t)
        (g_ref,) = torch.autograd.grad(ref, logits)
        torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-4, atol=1e-8)


def test_closed_form_model_posterior_equals_the_table_formula():
    gen = torch.Generator().manual_seed(1)
    T = 100
    m = MultinomialDiffusion([2, 6, 250], cosine_betas(T))
    n = 128
    for scale in (0.5, 8.0, 60.0):
        log_x0p = m.log_softmax(scale * torch.randn(n, m.total, generator=gen))
        xt = torch.stack([torch.randint(0, k, (n,), generator=gen) for k in m.cardinalities], 1)
        for t_i, t_p in ((T - 1, T - 2), (T - 1, 40), (37, 36), (5, -1), (0, -1)):
            t, tp = torch.full((1,), t_i), torch.full((1,), t_p)
            fast = m.model_posterior_from_codes(xt, t, tp, log_x0p)
            ref = m.model_posterior_probs(m.one_hot(xt), t, tp, log_x0p.exp())
            torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-6)


def test_sample_codes_frequencies_and_zero_probability_levels():
    m = MultinomialDiffusion([4, 3], linear_betas(10))
    n = 40000
    p = torch.tensor([[0.0, 0.5, 0.0, 0.5, 0.2, 0.0, 0.8]]).expand(n, -1)
    codes = m.sample_codes(p, torch.Generator().manual_seed(0))
    first = np.bincount(codes[:, 0].numpy(), minlength=4)
    second = np.bincount(codes[:, 1].numpy(), minlength=3)
    assert first[0] == first[2] == 0 and second[1] == 0  # never a level of probability 0
    assert stats.chisquare(first[[1, 3]], [n / 2, n / 2]).pvalue > 1e-3
    assert stats.chisquare(second[[0, 2]], [0.2 * n, 0.8 * n]).pvalue > 1e-3


def test_per_column_log_softmax_training_and_sampling_paths_agree():
    m = MultinomialDiffusion([3, 400, 2], linear_betas(10))
    logits = 30 * torch.randn(64, m.total, generator=torch.Generator().manual_seed(0))
    expected = torch.cat([torch.log_softmax(b, 1) for b in logits.split([3, 400, 2], 1)], 1)
    torch.testing.assert_close(m.log_softmax(logits), expected)  # no autograd: sampling path
    trained = m.log_softmax(logits.clone().requires_grad_())  # autograd: training path
    torch.testing.assert_close(trained.detach(), expected, rtol=1e-5, atol=1e-5)
