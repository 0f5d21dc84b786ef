"""MLP denoiser with timestep and (classifier-free) condition embeddings."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from equisynth.exceptions import ConfigError


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding ``(n, dim)`` of integer timesteps ``t``."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.float().unsqueeze(1) * freqs.unsqueeze(0)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=1)
    return emb


class MLPDenoiser(nn.Module):
    """Predicts the numeric noise and the categorical ``x_0`` logits.

    Input: ``x_num_t`` concatenated with the one-hot ``x_cat_t``, projected to ``dim_t``, plus a
    sinusoidal timestep embedding (through a small MLP) plus a learned condition embedding with
    ``n_conditions + 1`` rows; row ``n_conditions`` is the "no condition" null token. The output
    head is a plain ``Linear``: no activation (a GELU would bound eps below at about -0.17) and no
    dropout on the output.

    Parameters
    ----------
    d_num : int
        Number of numeric columns.
    cardinalities : sequence of int
        Levels of each categorical column.
    n_conditions : int
        Number of conditions (strata).
    hidden : tuple of int, default=(256, 256, 256)
    dim_t : int, default=128
    dropout : float, default=0.0

    Examples
    --------
    >>> m = MLPDenoiser(2, [3], 2, hidden=(16,), dim_t=8)
    >>> eps, logits = m(torch.zeros(4, 2), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long),
    ...                 torch.tensor([0, 1, 2, 2]))
    >>> tuple(eps.shape), tuple(logits.shape)
    ((4, 2), (4, 3))
    """

    def __init__(
        self,
        d_num: int,
        cardinalities: Sequence[int],
        n_conditions: int,
        *,
        hidden: Sequence[int] = (256, 256, 256),
        dim_t: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.d_num = int(d_num)
        self.cardinalities = [int(k) for k in cardinalities]
        self.n_conditions = int(n_conditions)
        d_in = self.d_num + sum(self.cardinalities)
        if d_in < 1 or self.n_conditions < 1 or not hidden:
            raise ConfigError(
                f"MLPDenoiser needs >= 1 input feature, >= 1 condition and >= 1 hidden layer; got "
                f"d_num={d_num}, cardinalities={list(cardinalities)}, n_conditions={n_conditions}, hidden={hidden}"
            )
        self.dim_t = int(dim_t)
        self.proj = nn.Linear(d_in, dim_t)
        self.time_mlp = nn.Sequential(nn.Linear(dim_t, dim_t), nn.SiLU(), nn.Linear(dim_t, dim_t))
        self.cond_emb = nn.Embedding(self.n_conditions + 1, dim_t)
        layers: list[nn.Module] = []
        prev = dim_t
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.SiLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            prev = h
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Linear(prev, d_in)  # linear output head

    @property
    def null_token(self) -> int:
        """Index of the learned "no condition" embedding."""
        return self.n_conditions

    def forward(
        self,
        x_num_t: torch.Tensor,
        x_cat_onehot_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(eps_num (n, d_num), logits (n, sum K))``; ``t`` may have shape ``(n,)`` or ``(1,)``."""
        x = torch.cat([x_num_t, x_cat_onehot_t], dim=1)
        h = self.proj(x) + self.time_mlp(timestep_embedding(t, self.dim_t)) + self.cond_emb(cond)
        out = self.head(self.blocks(h))
        return out[:, : self.d_num], out[:, self.d_num :]
