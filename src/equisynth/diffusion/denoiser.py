"""MLP denoiser with timestep and (classifier-free) condition embeddings."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
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
        starts = [0]
        for k in self.cardinalities[:-1]:
            starts.append(starts[-1] + k)
        # first one-hot slot of each categorical column (not saved: derived from cardinalities)
        self.register_buffer("cat_starts", torch.tensor(starts, dtype=torch.long), persistent=False)
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

    def _project(self, x_num_t: torch.Tensor, x_cat_t: torch.Tensor) -> torch.Tensor:
        if x_cat_t.dtype.is_floating_point:  # one-hot (n, sum K)
            return self.proj(torch.cat([x_num_t, x_cat_t], dim=1))
        # integer codes (n, C): the one-hot product is a sum of rows of the weight matrix, so
        # gather them instead of multiplying by a mostly-zero matrix (same result, same
        # weights; far cheaper for columns with hundreds of levels)
        w = self.proj.weight
        h = F.linear(x_num_t, w[:, : self.d_num], self.proj.bias)
        if self.cardinalities:
            table = w[:, self.d_num :].t().contiguous()
            h = h + F.embedding_bag(x_cat_t + self.cat_starts, table, mode="sum")
        return h

    def forward(
        self,
        x_num_t: torch.Tensor,
        x_cat_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(eps_num (n, d_num), logits (n, sum K))``.

        ``x_cat_t`` is either the concatenated one-hot encoding (float, ``(n, sum K)``) or the
        integer codes (int64, ``(n, C)``); both give the same output. ``t`` may have shape
        ``(n,)`` or ``(1,)``.
        """
        h = self._project(x_num_t, x_cat_t)
        h = h + self.time_mlp(timestep_embedding(t, self.dim_t)) + self.cond_emb(cond)
        if torch.is_grad_enabled():
            h = self.blocks(h)
        else:  # sampling: same layers, activations in place (no new buffer per layer)
            for layer in self.blocks:
                h = F.silu(h, inplace=True) if isinstance(layer, nn.SiLU) else layer(h)
        out = self.head(h)
        return out[:, : self.d_num], out[:, self.d_num :]
