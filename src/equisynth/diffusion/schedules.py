"""Noise schedules (beta sequences) for the diffusion models.

All schedules are returned as float64 tensors of shape ``(T,)`` with values in ``(0, 1)``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from equisynth.exceptions import ConfigError

ScheduleKind = Literal["linear", "cosine"]


def _check_T(T: int) -> int:
    if not isinstance(T, int | float) or int(T) != T or int(T) < 1:
        raise ConfigError(f"number of timesteps T must be a positive integer, got {T!r}")
    return int(T)


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """Linearly spaced betas from ``beta_start`` to ``beta_end``.

    The endpoints are used as given (no DDPM ``1000 / T`` rescaling): the MCRAGE paper chooses
    ``T`` from ``beta_T`` with :func:`paper_num_timesteps`, so rescaling would break that rule.

    Examples
    --------
    >>> b = linear_betas(10)
    >>> float(b[0]), round(float(b[-1]), 4)
    (0.0001, 0.02)
    """
    T = _check_T(T)
    if not 0.0 < beta_start <= beta_end < 1.0:
        raise ConfigError(f"need 0 < beta_start <= beta_end < 1, got {beta_start!r}, {beta_end!r}")
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Cosine schedule of Nichol & Dhariwal (2021), betas clipped at ``max_beta``.

    Examples
    --------
    >>> b = cosine_betas(100)
    >>> bool((b > 0).all() and (b < 1).all())
    True
    """
    T = _check_T(T)
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    betas = 1.0 - abar[1:] / abar[:-1]
    return betas.clamp(min=1e-8, max=max_beta)


def paper_num_timesteps(beta_T: float, diameter: float) -> int:
    """MCRAGE's rule for the number of steps: ``ceil(64 * beta_T * (1 + log(1 + diameter)))``.

    Examples
    --------
    >>> paper_num_timesteps(0.02, 0.0)
    2
    """
    if beta_T <= 0 or diameter < 0:
        raise ConfigError(f"need beta_T > 0 and diameter >= 0, got {beta_T!r}, {diameter!r}")
    return max(1, math.ceil(64.0 * beta_T * (1.0 + math.log1p(diameter))))


def make_betas(kind: ScheduleKind, T: int) -> torch.Tensor:
    """Betas of schedule ``kind`` (``"linear"`` or ``"cosine"``) with ``T`` steps."""
    if kind == "linear":
        return linear_betas(T)
    if kind == "cosine":
        return cosine_betas(T)
    raise ConfigError(f"schedule kind must be 'linear' or 'cosine', got {kind!r}")
