"""Differentiable group-fairness losses over K >= 2 groups (torch).

Both built-in losses are a (weighted, optionally smooth) maximum over groups of a per-group
*shortfall* in ``[0, 1]``:

- :func:`disparate_impact_loss`: ``|1 - DI|`` with ``DI = min_g rate_g / max_g rate_g`` and
  ``rate_g`` the mean of ``p`` over group ``g``; the shortfall of group ``g`` is
  ``1 - rate_g / max_h rate_h``, whose maximum over groups is exactly ``1 - DI``.
- :func:`worst_group_tpr_loss`: ``1 - min_g TPR_g`` with the *soft* true-positive rate
  ``TPR_g = sum(p * y over g) / sum(y over g)``; the shortfall of group ``g`` is ``1 - TPR_g``.

``p`` are probabilities (for instance a generator's ``P(label = 1 | demographics)``), ``groups``
integer group ids ``0..K-1``. Groups absent from the batch (or, for the TPR, without positives)
are ignored; with fewer than two groups present (one for the TPR) the disparity cannot be
measured and the loss is a zero that is still connected to ``p`` (``backward`` works).

How these differ from the FairSynth reference code: its loss thresholded the probabilities at
0.5 and converted them with ``.item()``, so it carried no gradient and training ignored it; it
compared only two groups; and its "worst-group TPR" was a mean over groups. Here nothing is
thresholded or detached (``torch.autograd`` reaches ``p``), any number of groups is handled
(intersectional groups such as ``sex x race``), and the worst group is a true minimum (or a
smooth minimum when ``smooth`` is given).

Examples
--------
>>> import torch
>>> p = torch.tensor([0.8, 0.6, 0.2, 0.4], requires_grad=True)
>>> groups = torch.tensor([0, 0, 1, 1])
>>> loss = disparate_impact_loss(p, groups)      # rates 0.7 and 0.3: 1 - 0.3 / 0.7
>>> round(float(loss.detach()), 4)
0.5714
>>> loss.backward(); bool(p.grad.abs().sum() > 0)
True
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Literal

import torch

from equisynth.exceptions import ConfigError, DataError

__all__ = [
    "FAIRNESS_LOSSES",
    "FairnessLoss",
    "disparate_impact_loss",
    "make_fairness_loss",
    "worst_group_tpr_loss",
]

#: Names accepted by :func:`make_fairness_loss`.
FAIRNESS_LOSSES = ("disparate_impact", "worst_group_tpr")

_EPS = 1e-12


def _as_groups(groups, p: torch.Tensor, n_groups: int | None) -> tuple[torch.Tensor, int]:
    g = torch.as_tensor(groups, device=p.device)
    if g.dtype.is_floating_point or g.dtype == torch.bool:
        raise DataError(f"groups must hold integer group ids 0..K-1, got dtype {g.dtype}")
    g = g.to(torch.long)
    if g.shape != p.shape or p.ndim != 1:
        raise DataError(
            f"p and groups must be 1-d of the same length, got shapes {tuple(p.shape)} and "
            f"{tuple(g.shape)}"
        )
    if g.numel() and int(g.min()) < 0:
        raise DataError(f"group ids must be >= 0, got {int(g.min())}")
    seen = int(g.max()) + 1 if g.numel() else 0
    if n_groups is None:
        n_groups = max(seen, 2)
    elif not isinstance(n_groups, int) or n_groups < 2:
        raise ConfigError(f"n_groups must be an integer >= 2, got {n_groups!r}")
    elif seen > n_groups:
        raise DataError(f"group id {seen - 1} is outside 0..{n_groups - 1} (n_groups={n_groups})")
    return g, n_groups


def _as_weights(weights, n_groups: int, like: torch.Tensor) -> torch.Tensor | None:
    if weights is None:
        return None
    w = torch.as_tensor(weights, dtype=like.dtype, device=like.device).reshape(-1)
    if w.numel() != n_groups:
        raise ConfigError(f"weights must have one entry per group ({n_groups}), got {w.numel()}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or not bool((w > 0).any()):
        raise ConfigError(
            f"weights must be finite, >= 0 and not all 0, got {w.detach().cpu().tolist()}"
        )
    return w / w.max()  # uniform weights give the unweighted loss


def _check_smooth(smooth) -> None:
    if smooth is not None and not (isinstance(smooth, int | float) and smooth > 0):
        raise ConfigError(f"smooth must be None or a temperature > 0, got {smooth!r}")


def _smooth_max(x: torch.Tensor, temperature: float | None) -> torch.Tensor:
    """Max, or log-mean-exp with a temperature (stays within [mean, max]; equals x at parity)."""
    if temperature is None:
        return x.max()
    return temperature * (torch.logsumexp(x / temperature, dim=0) - math.log(x.numel()))


def _worst_shortfall(
    shortfall: torch.Tensor, present: torch.Tensor, weights, smooth, anchor: torch.Tensor
) -> torch.Tensor:
    if weights is not None:
        shortfall = shortfall * weights
    shortfall = shortfall[present]
    if shortfall.numel() == 0:
        return anchor.sum() * 0.0  # nothing to compare: zero, but still connected to p
    return _smooth_max(shortfall, smooth)


def disparate_impact_loss(
    p: torch.Tensor,
    groups,
    *,
    n_groups: int | None = None,
    weights=None,
    smooth: float | None = None,
) -> torch.Tensor:
    """``|1 - DI|`` of the group rates of ``p``, differentiable, over K >= 2 groups.

    Parameters
    ----------
    p : tensor of shape (n,)
        Probabilities in [0, 1] (with grad).
    groups : int tensor or array of shape (n,)
        Group id ``0..K-1`` of each row; groups absent from the batch are ignored.
    n_groups : int, optional
        K (default: ``max(groups) + 1``).
    weights : tensor or array of shape (K,), optional
        Per-group emphasis, normalised by its maximum: the loss is
        ``max_g w_g * (1 - rate_g / max_h rate_h)``, so raising one group's weight makes its
        shortfall count more. Uniform weights (the default) give exactly ``1 - DI``.
    smooth : float, optional
        Temperature of a smooth maximum over groups (log-mean-exp, which lies between the mean
        and the maximum and is 0 at parity); the normaliser ``max_h rate_h`` is smoothed the
        same way. ``None`` (default) uses the exact min / max (a sub-gradient).

    Returns
    -------
    Scalar tensor, in [0, 1] without ``smooth``; 0 when every present group has the same rate
    (or fewer than two groups are present).

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([0.9, 0.5, 0.2, 0.6, 0.3])
    >>> round(float(disparate_impact_loss(p, torch.tensor([0, 0, 1, 2, 2]))), 4)  # 1 - 0.2/0.7
    0.7143
    """
    _check_smooth(smooth)
    g, k = _as_groups(groups, p, n_groups)
    w = _as_weights(weights, k, p)
    count = torch.zeros(k, dtype=p.dtype, device=p.device).index_add_(0, g, torch.ones_like(p))
    total = torch.zeros(k, dtype=p.dtype, device=p.device).index_add(0, g, p)
    present = count > 0
    if int(present.sum()) < 2:
        return p.sum() * 0.0
    rate = total[present] / count[present]
    top = _smooth_max(rate, smooth)
    shortfall = torch.zeros(k, dtype=p.dtype, device=p.device)
    shortfall[present] = (top - rate) / top.clamp_min(_EPS)
    return _worst_shortfall(shortfall, present, w, smooth, p)


def worst_group_tpr_loss(
    p: torch.Tensor,
    y,
    groups,
    *,
    n_groups: int | None = None,
    weights=None,
    smooth: float | None = None,
) -> torch.Tensor:
    """``1 - min_g TPR_g`` with the soft TPR ``sum(p * y over g) / sum(y over g)``.

    Parameters
    ----------
    p : tensor of shape (n,)
        Probabilities of the positive class (with grad).
    y : tensor or array of shape (n,)
        True labels 0/1; groups without positives in the batch are ignored.
    groups, n_groups, weights, smooth
        As in :func:`disparate_impact_loss`; the loss is ``max_g w_g * (1 - TPR_g)`` (a smooth
        maximum with ``smooth``), i.e. the minimum over groups, not the reference's mean.

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([0.9, 0.5, 0.2, 0.6])
    >>> y = torch.tensor([1, 1, 1, 0])
    >>> round(float(worst_group_tpr_loss(p, y, torch.tensor([0, 0, 1, 1]))), 4)  # 1 - 0.2
    0.8
    """
    _check_smooth(smooth)
    g, k = _as_groups(groups, p, n_groups)
    w = _as_weights(weights, k, p)
    y = torch.as_tensor(y, device=p.device).to(p.dtype)
    if y.shape != p.shape:
        raise DataError(f"y must have the shape of p {tuple(p.shape)}, got {tuple(y.shape)}")
    positives = torch.zeros(k, dtype=p.dtype, device=p.device).index_add_(0, g, y)
    hits = torch.zeros(k, dtype=p.dtype, device=p.device).index_add(0, g, p * y)
    present = positives > 0
    shortfall = torch.zeros(k, dtype=p.dtype, device=p.device)
    shortfall[present] = 1.0 - hits[present] / positives[present]
    return _worst_shortfall(shortfall, present, w, smooth, p)


class FairnessLoss:
    """A fairness loss called as ``loss(p, y, groups, *, n_groups=None, weights=None)``.

    Built by :func:`make_fairness_loss`; checks that a user callable returns a scalar tensor.

    Attributes
    ----------
    name : str
        ``"disparate_impact"``, ``"worst_group_tpr"`` or the callable's name.
    accepts_weights : bool
        Whether per-group weights can be passed (always for the built-in losses; for a callable,
        when it has a ``weights`` keyword).
    """

    def __init__(self, fn: Callable, name: str, *, builtin: bool, smooth: float | None = None):
        self.fn = fn
        self.name = name
        self.builtin = builtin
        self.smooth = smooth
        if builtin:
            self.accepts_weights = True
        else:
            try:
                params = inspect.signature(fn).parameters.values()
            except (TypeError, ValueError):  # builtins without a signature
                params = []
            self.accepts_weights = any(
                q.name == "weights" or q.kind is inspect.Parameter.VAR_KEYWORD for q in params
            )

    def __repr__(self) -> str:
        return f"FairnessLoss({self.name!r})"

    def __call__(self, p, y, groups, *, n_groups=None, weights=None) -> torch.Tensor:
        if self.builtin and self.name == "disparate_impact":
            return disparate_impact_loss(
                p, groups, n_groups=n_groups, weights=weights, smooth=self.smooth
            )
        if self.builtin:
            return worst_group_tpr_loss(
                p, y, groups, n_groups=n_groups, weights=weights, smooth=self.smooth
            )
        if weights is not None and not self.accepts_weights:
            raise ConfigError(
                f"per-group weights were given but the fairness callable {self.name!r} has no "
                "`weights` keyword; add one (weights: tensor of shape (K,)) or drop group_weights"
            )
        out = (
            self.fn(p, y, groups, weights=weights) if weights is not None else self.fn(p, y, groups)
        )
        if not isinstance(out, torch.Tensor) or out.numel() != 1 or out.ndim > 1:
            got = (
                f"a tensor of shape {tuple(out.shape)}"
                if isinstance(out, torch.Tensor)
                else type(out).__name__
            )
            raise ConfigError(
                f"the fairness callable {self.name!r} must return a scalar torch tensor (built "
                f"from p without .item() or thresholds, so it has a gradient), got {got}"
            )
        if not out.dtype.is_floating_point:
            raise ConfigError(
                f"the fairness callable {self.name!r} returned a {out.dtype} tensor; return a "
                "floating-point loss"
            )
        return out.reshape(())


def make_fairness_loss(
    name_or_callable: Literal["disparate_impact", "worst_group_tpr"] | Callable | FairnessLoss,
    *,
    smooth: float | None = None,
) -> FairnessLoss:
    """A :class:`FairnessLoss` from a name or a callable ``(p, y, groups) -> scalar tensor``.

    Parameters
    ----------
    name_or_callable : {"disparate_impact", "worst_group_tpr"} or callable
        A callable receives ``p`` (n,) probabilities with grad, ``y`` (n,) 0/1 labels and
        ``groups`` (n,) int64 group ids, and must return a scalar tensor; it may take a
        ``weights`` keyword (per-group weights, shape (K,)).
    smooth : float, optional
        Temperature of the smooth maximum of the built-in losses.

    Examples
    --------
    >>> import torch
    >>> loss = make_fairness_loss("worst_group_tpr")
    >>> p, y, g = torch.tensor([0.9, 0.3]), torch.tensor([1, 1]), torch.tensor([0, 1])
    >>> round(float(loss(p, y, g)), 4)
    0.7
    >>> gap = make_fairness_loss(lambda p, y, g: (p[g == 0].mean() - p[g == 1].mean()).abs())
    >>> round(float(gap(p, y, g)), 4)
    0.6
    """
    _check_smooth(smooth)
    if isinstance(name_or_callable, FairnessLoss):
        return name_or_callable
    if isinstance(name_or_callable, str):
        if name_or_callable not in FAIRNESS_LOSSES:
            raise ConfigError(
                f"fairness loss must be one of {list(FAIRNESS_LOSSES)} or a callable "
                f"(p, y, groups) -> scalar tensor, got {name_or_callable!r}"
            )
        return FairnessLoss(None, name_or_callable, builtin=True, smooth=smooth)
    if callable(name_or_callable):
        name = getattr(name_or_callable, "__name__", type(name_or_callable).__name__)
        return FairnessLoss(name_or_callable, str(name), builtin=False)
    raise ConfigError(
        f"fairness loss must be one of {list(FAIRNESS_LOSSES)} or a callable "
        f"(p, y, groups) -> scalar tensor, got {type(name_or_callable).__name__}"
    )
