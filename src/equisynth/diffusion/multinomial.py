"""Multinomial (uniform-noise) diffusion for categorical columns, TabDDPM-style.

Each categorical column ``j`` with ``K_j`` levels is diffused independently:
``q(x_t | x_0) = Cat(abar_t * onehot(x_0) + (1 - abar_t) / K_j)``. The network predicts
logits of ``x_0``; the reverse step plugs ``softmax(logits)`` into the true posterior.
Jumps ``t -> s < t`` use ``alpha_{t|s} = abar_t / abar_s`` so strided samplers work.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from equisynth.exceptions import ConfigError

_EPS = 1e-30


class MultinomialDiffusion:
    """Categorical diffusion over several columns (no weights).

    Parameters
    ----------
    cardinalities : sequence of int
        Number of levels of each categorical column (may be empty).
    betas : torch.Tensor
        Shape ``(T,)``.
    aux_weight : float, default=1.0
        Weight of an auxiliary cross-entropy between the predicted and the true ``x_0`` added
        to the KL loss at every timestep. At noisy timesteps the true posterior hardly depends
        on ``x_0``, so the KL alone gives almost no signal there and the model under-learns
        ``p(x_0 | condition)``, which blurs sampled frequencies toward uniform; the
        cross-entropy is a proper loss for the Bayes-optimal ``x_0`` predictor that the reverse
        step needs (measured in ``tests/diffusion/test_diffusion_units.py``).

    Examples
    --------
    >>> from equisynth.diffusion.schedules import linear_betas
    >>> m = MultinomialDiffusion([3, 2], linear_betas(50))
    >>> g = torch.Generator().manual_seed(0)
    >>> m.q_sample(torch.zeros(5, 2, dtype=torch.long), torch.full((5,), 49), g).shape
    torch.Size([5, 2])
    """

    def __init__(
        self, cardinalities: Sequence[int], betas: torch.Tensor, *, aux_weight: float = 1.0
    ) -> None:
        self.cardinalities = [int(k) for k in cardinalities]
        if not aux_weight >= 0:
            raise ConfigError(f"aux_weight must be >= 0, got {aux_weight!r}")
        self.aux_weight = float(aux_weight)
        if any(k < 1 for k in self.cardinalities):
            raise ConfigError(f"every cardinality must be >= 1, got {list(cardinalities)!r}")
        b = torch.as_tensor(betas, dtype=torch.float64).flatten()
        if b.numel() < 1 or not bool(((b > 0) & (b < 1)).all()):
            raise ConfigError("betas must be a non-empty 1-D tensor with values in (0, 1)")
        self.num_timesteps = int(b.numel())
        # abar with a leading 1 for "s = -1" (i.e. x_0 itself): index with s + 1.
        abar = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1.0 - b, 0)])
        self.abar_ext = abar.to(torch.float32)
        offs = [0]
        for k in self.cardinalities:
            offs.append(offs[-1] + k)
        self.offsets = offs
        self.total = offs[-1]
        self.invK = (
            torch.cat([torch.full((k,), 1.0 / k) for k in self.cardinalities])
            if self.total
            else torch.zeros(0)
        )

    def to(self, device: torch.device | str) -> MultinomialDiffusion:
        """Move the tables to ``device`` (in place) and return self."""
        self.abar_ext = self.abar_ext.to(device)
        self.invK = self.invK.to(device)
        return self

    # ----------------------------------------------------------------- helpers
    def one_hot(self, codes: torch.Tensor) -> torch.Tensor:
        """Concatenated one-hot encoding ``(n, sum K)`` of integer codes ``(n, C)``."""
        if not self.cardinalities:
            return torch.zeros(codes.shape[0], 0, device=codes.device)
        return torch.cat(
            [F.one_hot(codes[:, j], k).float() for j, k in enumerate(self.cardinalities)], dim=1
        )

    def log_softmax(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-column log-softmax of concatenated logits."""
        if not self.cardinalities:
            return logits
        o = self.offsets
        return torch.cat(
            [F.log_softmax(logits[:, o[j] : o[j + 1]], dim=1) for j in range(len(o) - 1)], dim=1
        )

    def _normalize(self, p: torch.Tensor) -> torch.Tensor:
        o = self.offsets
        return torch.cat(
            [
                p[:, o[j] : o[j + 1]] / p[:, o[j] : o[j + 1]].sum(1, keepdim=True)
                for j in range(len(o) - 1)
            ],
            1,
        )

    def _abar(self, s: torch.Tensor) -> torch.Tensor:
        return self.abar_ext.to(s.device)[s + 1].unsqueeze(1)

    def q_probs(self, x0_probs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``q(x_t | x_0)`` probabilities given (possibly soft) ``x0_probs``; ``t = -1`` gives x_0."""
        a = self._abar(t)
        return a * x0_probs + (1 - a) * self.invK.to(x0_probs.device)

    def sample_codes(self, probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Draw integer codes ``(n, C)`` from concatenated per-column probabilities (Gumbel-max)."""
        n = probs.shape[0]
        if not self.cardinalities:
            return torch.zeros(n, 0, dtype=torch.long, device=probs.device)
        u = torch.rand(probs.shape, generator=generator, device=probs.device).clamp_(1e-20, 1.0)
        score = torch.log(probs.clamp(min=_EPS)) - torch.log(-torch.log(u))
        o = self.offsets
        return torch.stack([score[:, o[j] : o[j + 1]].argmax(1) for j in range(len(o) - 1)], dim=1)

    # ------------------------------------------------------------------ public
    def q_sample(
        self, x0_codes: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw ``x_t`` codes from ``q(x_t | x_0)``."""
        return self.sample_codes(self.q_probs(self.one_hot(x0_codes), t), generator)

    def posterior_probs(
        self, xt_onehot: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor, x0_probs: torch.Tensor
    ) -> torch.Tensor:
        """``q(x_{t_prev} | x_t, x_0)`` for any ``-1 <= t_prev < t`` (``x0_probs`` may be soft)."""
        a_t, a_s = self._abar(t), self._abar(t_prev)
        a_ts = a_t / a_s
        invK = self.invK.to(xt_onehot.device)
        fact1 = a_ts * xt_onehot + (1 - a_ts) * invK  # q(x_t | x_s) as a function of x_s
        fact2 = a_s * x0_probs + (1 - a_s) * invK  # q(x_s | x_0)
        return self._normalize(fact1 * fact2)

    def model_posterior_probs(
        self, xt_onehot: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor, x0_probs: torch.Tensor
    ) -> torch.Tensor:
        """``p(x_{t_prev} | x_t) = sum_k q(x_{t_prev} | x_t, x_0 = k) p(x_0 = k | x_t)``.

        ``x0_probs`` is read as the predictive distribution ``p(x_0 | x_t)`` (what the
        cross-entropy loss trains). Plugging it straight into ``q(x_{t_prev} | x_t, x_0)``, as
        Hoogeboom et al. and TabDDPM do, drops the factor ``1 / q(x_t | x_0 = k)`` of the exact
        mixture and biases sampled frequencies; here each level is reweighted by it first.
        """
        a_t = self._abar(t)
        lik = a_t * xt_onehot + (1 - a_t) * self.invK.to(xt_onehot.device)  # q(x_t | x_0 = k)
        return self.posterior_probs(xt_onehot, t, t_prev, self._normalize(x0_probs / lik))

    def posterior_step(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        t_prev: torch.Tensor,
        x0_logits: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample ``x_{t_prev}`` codes from ``p(x_{t_prev} | x_t)`` with the predicted ``x_0`` logits.

        ``x0_logits`` may also be per-column log-probabilities (as produced by guidance).
        """
        if not self.cardinalities:
            return x_t
        x0p = self.log_softmax(x0_logits).exp()
        probs = self.model_posterior_probs(self.one_hot(x_t), t, t_prev, x0p)
        return self.sample_codes(probs, generator)

    def loss(
        self, logits_pred: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) for ``t > 0``, decoder NLL at ``t == 0``,
        plus ``aux_weight`` times the cross-entropy of the ``x_0`` prediction at every ``t``.

        Averaged over rows and categorical columns (0 when there is no categorical column).
        """
        if not self.cardinalities:
            return logits_pred.new_zeros(())
        x0_oh, xt_oh = self.one_hot(x0), self.one_hot(xt)
        log_x0_hat = self.log_softmax(logits_pred)
        s = t - 1
        q = self.posterior_probs(xt_oh, t, s, x0_oh)
        p = self.model_posterior_probs(xt_oh, t, s, log_x0_hat.exp())
        logq, logp = torch.log(q.clamp(min=_EPS)), torch.log(p.clamp(min=_EPS))
        kl = (q * (logq - logp)).sum(1)
        nll = -(x0_oh * log_x0_hat).sum(1)
        per_row = torch.where(t == 0, nll, kl)
        if self.aux_weight > 0:
            per_row = per_row + self.aux_weight * nll
        return per_row.mean() / len(self.cardinalities)
