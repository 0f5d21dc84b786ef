"""Differentiable fairness losses: exact values, gradients, K groups, missing groups."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from equisynth.exceptions import ConfigError, DataError
from equisynth.fairness import (
    disparate_impact,
    disparate_impact_loss,
    make_fairness_loss,
    worst_group_tpr,
    worst_group_tpr_loss,
)


def test_disparate_impact_loss_equals_the_hand_computed_value():
    p = torch.tensor([0.9, 0.5, 0.2, 0.6, 0.3, 0.1])
    g = torch.tensor([0, 0, 1, 2, 2, 1])
    # rates: g0 0.7, g1 0.15, g2 0.45 -> DI = 0.15 / 0.7
    assert float(disparate_impact_loss(p, g)) == pytest.approx(1 - 0.15 / 0.7)
    # parity -> 0
    assert float(disparate_impact_loss(torch.full((4,), 0.3), torch.tensor([0, 1, 0, 1]))) == 0.0
    # agrees with the metric on hard predictions (fairlearn-based, K = 3)
    yhat = np.array([1, 1, 0, 1, 0, 0, 1, 0, 1])
    groups = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    metric = disparate_impact(
        np.zeros(9), yhat, sensitive_features=groups.astype(str), min_group_size=1
    )
    loss = disparate_impact_loss(torch.tensor(yhat, dtype=torch.float64), groups)
    assert float(loss) == pytest.approx(1 - metric)


def test_worst_group_tpr_loss_is_one_minus_the_minimum_not_the_mean():
    p = torch.tensor([0.9, 0.7, 0.1, 0.4, 0.2, 0.8, 0.5])
    y = torch.tensor([1, 1, 0, 1, 1, 0, 1])
    g = torch.tensor([0, 0, 0, 1, 1, 1, 2])
    # soft TPR: g0 (0.9 + 0.7) / 2 = 0.8, g1 (0.4 + 0.2) / 2 = 0.3, g2 0.5
    loss = worst_group_tpr_loss(p, y, g)
    assert float(loss) == pytest.approx(1 - 0.3)
    assert float(loss) != pytest.approx(1 - (0.8 + 0.3 + 0.5) / 3)
    # hard predictions: equals the metric
    yhat = (p > 0.5).double()
    metric = worst_group_tpr(y.numpy(), yhat.numpy(), sensitive_features=g.numpy().astype(str),
                             min_group_size=1)  # fmt: skip
    assert float(worst_group_tpr_loss(yhat, y, g)) == pytest.approx(1 - metric)


def test_losses_have_a_nonzero_gradient_and_pass_gradcheck():
    torch.manual_seed(0)  # test-local data only
    logits = torch.randn(12, dtype=torch.float64, requires_grad=True)
    g = torch.tensor([0, 1, 2] * 4)
    y = torch.tensor([1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1], dtype=torch.float64)
    for fn in (
        lambda z: disparate_impact_loss(torch.sigmoid(z), g),
        lambda z: disparate_impact_loss(torch.sigmoid(z), g, smooth=0.1),
        lambda z: worst_group_tpr_loss(torch.sigmoid(z), y, g),
        lambda z: worst_group_tpr_loss(torch.sigmoid(z), y, g, smooth=0.05),
        lambda z: disparate_impact_loss(torch.sigmoid(z), g, weights=[1.0, 2.0, 0.5]),
    ):
        (grad,) = torch.autograd.grad(fn(logits), logits)
        assert grad.abs().sum() > 0
        assert torch.autograd.gradcheck(fn, (logits,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", ["disparate_impact", "worst_group_tpr"])
@pytest.mark.parametrize("smooth", [None, 0.05])
def test_gradient_descent_on_logits_reduces_the_disparity_over_three_groups(name, smooth):
    g = torch.arange(30) % 3
    y = torch.ones(30)
    logits = torch.tensor([2.0, -1.0, 0.0]).repeat(10).requires_grad_(True)  # rates ~.88 .27 .5
    loss_fn = make_fairness_loss(name, smooth=smooth)
    opt = torch.optim.SGD([logits], lr=2.0)
    start = float(loss_fn(torch.sigmoid(logits.detach()), y, g))
    for _ in range(50):
        opt.zero_grad()
        loss_fn(torch.sigmoid(logits), y, g).backward()
        opt.step()
    p = torch.sigmoid(logits).detach()
    rates = torch.stack([p[g == k].mean() for k in range(3)])
    end = float(loss_fn(p, y, g))
    assert end < 0.5 * start
    if name == "disparate_impact":
        assert float(rates.min() / rates.max()) > 0.8  # from about 0.3
    else:
        assert float(rates.min()) > 0.5  # the worst group's TPR rose from about 0.27


def test_groups_missing_from_the_batch_are_ignored():
    p = torch.tensor([0.8, 0.4, 0.4, 0.2], requires_grad=True)
    g = torch.tensor([0, 0, 3, 3])  # groups 1 and 2 are absent
    assert float(disparate_impact_loss(p.detach(), g, n_groups=5)) == pytest.approx(1 - 0.3 / 0.6)
    # one group only: nothing to compare, zero but backward still works
    single = disparate_impact_loss(p, torch.zeros(4, dtype=torch.long), n_groups=3)
    single.backward()
    assert float(single.detach()) == 0.0 and p.grad is not None
    # TPR: a group without positives is ignored
    y = torch.tensor([1, 1, 0, 0])
    assert float(worst_group_tpr_loss(p.detach(), y, g)) == pytest.approx(1 - 0.6)
    assert float(worst_group_tpr_loss(p.detach(), torch.zeros(4), g)) == 0.0


def test_weights_emphasise_a_group():
    p = torch.tensor([0.9, 0.9, 0.3, 0.3, 0.6, 0.6])
    g = torch.tensor([0, 0, 1, 1, 2, 2])
    # shortfalls 0, 2/3, 1/3; weight on group 2 only -> its shortfall
    only2 = disparate_impact_loss(p, g, weights=[0.0, 0.0, 1.0])
    assert float(only2) == pytest.approx(1 / 3)
    assert float(disparate_impact_loss(p, g, weights=[3.0, 3.0, 3.0])) == pytest.approx(2 / 3)


def test_bad_inputs_are_clear_errors():
    p = torch.rand(4)
    with pytest.raises(DataError, match="integer group ids"):
        disparate_impact_loss(p, torch.tensor([0.0, 1.0, 0.0, 1.0]))
    with pytest.raises(DataError, match="same length"):
        disparate_impact_loss(p, torch.tensor([0, 1]))
    with pytest.raises(DataError, match="outside"):
        disparate_impact_loss(p, torch.tensor([0, 1, 2, 3]), n_groups=2)
    with pytest.raises(ConfigError, match="one entry per group"):
        disparate_impact_loss(p, torch.tensor([0, 1, 0, 1]), weights=[1.0])
    with pytest.raises(ConfigError, match="smooth"):
        disparate_impact_loss(p, torch.tensor([0, 1, 0, 1]), smooth=0)
    with pytest.raises(ConfigError, match="disparate_impact"):
        make_fairness_loss("dp")


def test_make_fairness_loss_validates_callables():
    p, y, g = torch.rand(6, requires_grad=True), torch.ones(6), torch.tensor([0, 1] * 3)
    gap = make_fairness_loss(lambda p, y, g: (p[g == 0].mean() - p[g == 1].mean()) ** 2)
    out = gap(p, y, g)
    assert out.ndim == 0 and out.requires_grad
    with pytest.raises(ConfigError, match="scalar torch tensor"):
        make_fairness_loss(lambda p, y, g: p.mean().item())(p, y, g)
    with pytest.raises(ConfigError, match="scalar torch tensor"):
        make_fairness_loss(lambda p, y, g: p)(p, y, g)
    with pytest.raises(ConfigError, match="weights"):
        gap(p, y, g, weights=torch.ones(2))

    def weighted(p, y, g, *, weights=None):
        return (weights[g] * p).mean()

    assert make_fairness_loss(weighted)(p, y, g, weights=torch.ones(2)).requires_grad

    # a user callable named like a built-in is still the user's callable
    def disparate_impact(p, y, g):
        return p.sum() * 0 + 42.0

    assert float(make_fairness_loss(disparate_impact)(p, y, g).detach()) == 42.0
