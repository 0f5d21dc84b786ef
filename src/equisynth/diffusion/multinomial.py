"""Multinomial (uniform-noise) diffusion for categorical columns, TabDDPM-style.

Each categorical column ``j`` with ``K_j`` levels is diffused independently:
``q(x_t | x_0) = Cat(abar_t * onehot(x_0) + (1 - abar_t) / K_j)``. The network predicts
logits of ``x_0``; the reverse step plugs ``softmax(logits)`` into the true posterior.
Jumps ``t -> s < t`` use ``alpha_{t|s} = abar_t / abar_s`` so strided samplers work.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

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
        # Segment table for per-column sums and broadcasts as two small matmuls (one kernel
        # whatever the number of columns, differentiable, fast on CPU and GPU): membership[k, j]
        # is 1 when slot k belongs to column j.
        cards = torch.tensor(self.cardinalities, dtype=torch.long)
        slot_column = torch.repeat_interleave(torch.arange(len(cards)), cards)
        self.membership = torch.zeros(self.total, len(cards))
        self.membership[torch.arange(self.total), slot_column] = 1.0
        self.column_start = torch.tensor(offs[:-1], dtype=torch.long)
        self.cards_t = cards.float()

    _TABLES = ("abar_ext", "invK", "membership", "column_start", "cards_t")

    def to(self, device: torch.device | str) -> MultinomialDiffusion:
        """Move the tables to ``device`` (in place) and return self."""
        for name in self._TABLES:
            setattr(self, name, getattr(self, name).to(device))
        return self

    # ----------------------------------------------------------------- helpers
    def _per_slot(self, per_column: torch.Tensor) -> torch.Tensor:
        """Broadcast finite ``(n, C)`` column values to the ``(n, sum K)`` slots."""
        return per_column @ self.membership.to(per_column.device).T

    def _segment_sum(self, x: torch.Tensor) -> torch.Tensor:
        """Per-column sums ``(n, C)`` of finite slot values ``(n, sum K)``."""
        return x @ self.membership.to(x.device)

    def _columns(self, x: torch.Tensor):
        o = self.offsets
        return (x[:, o[j] : o[j + 1]] for j in range(len(o) - 1))

    def one_hot(self, codes: torch.Tensor) -> torch.Tensor:
        """Concatenated one-hot encoding ``(n, sum K)`` of integer codes ``(n, C)``."""
        out = torch.zeros(codes.shape[0], self.total, device=codes.device)
        if not self.cardinalities:
            return out
        return out.scatter_(1, codes + self.column_start.to(codes.device), 1.0)

    def log_softmax(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-column log-softmax of concatenated logits."""
        if not self.cardinalities:
            return logits
        if not (torch.is_grad_enabled() and logits.requires_grad):
            # sampling: a log-sum-exp per column slice is the cheapest forward
            lse = torch.stack([torch.logsumexp(b, 1) for b in self._columns(logits)], 1)
            return logits - self._per_slot(lse)
        # training: slices would each send a full-width gradient back; shift by each column's
        # maximum (keeps exp() finite, does not change the result) and sum by matrix product
        peak = torch.stack([b.amax(1) for b in self._columns(logits.detach())], 1)
        shifted = logits - self._per_slot(peak)
        return shifted - self._per_slot(self._segment_sum(shifted.exp()).log())

    def _normalize(self, p: torch.Tensor) -> torch.Tensor:
        return p / self._per_slot(self._segment_sum(p))

    def _abar(self, s: torch.Tensor) -> torch.Tensor:
        return self.abar_ext.to(s.device)[s + 1].unsqueeze(1)

    def q_probs(self, x0_probs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``q(x_t | x_0)`` probabilities given (possibly soft) ``x0_probs``; ``t = -1`` gives x_0."""
        a = self._abar(t)
        return a * x0_probs + (1 - a) * self.invK.to(x0_probs.device)

    def sample_codes(self, probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Draw integer codes ``(n, C)`` from concatenated per-column probabilities.

        Inverse-CDF sampling: one uniform number per row and column (instead of one Gumbel
        number per level), so columns with hundreds of levels stay cheap.
        """
        n = probs.shape[0]
        if not self.cardinalities:
            return torch.zeros(n, 0, dtype=torch.long, device=probs.device)
        # u in (0, 1], so that a level of probability 0 is never drawn
        u = 1.0 - torch.rand(n, len(self.cardinalities), generator=generator, device=probs.device)
        codes = []
        for j, block in enumerate(self._columns(probs)):
            cdf = block.cumsum(1)
            # level = number of levels whose CDF lies below u * (column total)
            below = (cdf < u[:, j : j + 1] * cdf[:, -1:]).sum(1)
            codes.append(below.clamp_(max=block.shape[1] - 1))
        return torch.stack(codes, dim=1)

    # ------------------------------------------------------------------ public
    def q_sample(
        self, x0_codes: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw ``x_t`` codes from ``q(x_t | x_0)``: keep ``x_0`` with probability ``abar_t``,
        else a uniformly drawn level (the same distribution as ``q_probs``, without building
        the one-hot table)."""
        n = x0_codes.shape[0]
        if not self.cardinalities:
            return x0_codes
        shape = (n, len(self.cardinalities))
        keep = torch.rand(shape, generator=generator, device=x0_codes.device) < self._abar(t)
        uniform = torch.rand(shape, generator=generator, device=x0_codes.device)
        noise = (uniform * self.cards_t.to(x0_codes.device)).long()
        noise = torch.minimum(noise, (self.cards_t.to(x0_codes.device) - 1).long())
        return torch.where(keep, x0_codes, noise)

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
        probs = self.model_posterior_from_codes(x_t, t, t_prev, self.log_softmax(x0_logits))
        return self.sample_codes(probs, generator)

    def model_posterior_from_codes(
        self, x_t: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor, log_x0p: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`model_posterior_probs` from the codes ``x_t`` and ``log p(x_0 | x_t)``.

        Closed form: with ``c1 = (1 - abar_t/abar_s)/K`` and ``c2 = (1 - abar_s)/K``,
        ``p_k = c1 (c2 + abar_s x0'_k) / Zp`` for every level but ``j = x_t``, where ``x0'`` is
        ``p(x_0 | x_t)`` reweighted by ``1 / q(x_t | x_0)``; a handful of full-width operations
        instead of the two posterior tables.
        """
        dev = log_x0p.device
        K = self.cards_t.to(dev)
        j = x_t + self.column_start.to(dev)
        a_t, a_s = self._abar(t), self._abar(t_prev)
        a_ts = a_t / a_s
        c1, c2 = (1 - a_ts) / K, (1 - a_s) / K
        l0 = (1 - a_t) / K
        rho = l0 / (l0 + a_t)
        log_x0p_j = log_x0p.gather(1, j)
        x0p_j = log_x0p_j.exp()
        z_r = -torch.expm1(log_x0p_j) + x0p_j * rho
        f2_j = c2 + a_s * rho * x0p_j / z_r
        z_p = c1 + a_ts * f2_j
        probs = log_x0p.exp() * self._per_slot(c1 * a_s / (z_r * z_p)) + self._per_slot(
            c1 * c2 / z_p
        )
        return probs.scatter_(1, j, (c1 + a_ts) * f2_j / z_p)

    def loss(
        self, logits_pred: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) for ``t > 0``, decoder NLL at ``t == 0``,
        plus ``aux_weight`` times the cross-entropy of the ``x_0`` prediction at every ``t``.

        Averaged over rows and categorical columns (0 when there is no categorical column).
        ``p`` is :meth:`model_posterior_probs`; the KL is evaluated in closed form (the true
        posterior is uniform except at the levels ``x_0`` and ``x_t``), which needs a handful
        of full-width tensor operations instead of dozens; :meth:`loss_reference` computes the
        same value from the full posterior tables (used by the tests).
        """
        if not self.cardinalities:
            return logits_pred.new_zeros(())
        log_x0_hat = self.log_softmax(logits_pred)
        starts = self.column_start.to(logits_pred.device)
        nll = -log_x0_hat.gather(1, x0 + starts)  # (n, C)
        kl = self._kl(log_x0_hat, x0 + starts, xt + starts, x0 == xt, t)
        per = torch.where((t == 0).reshape(-1, 1), nll, kl)
        if self.aux_weight > 0:
            per = per + self.aux_weight * nll
        return per.sum(1).mean() / len(self.cardinalities)

    def _kl(self, log_x0_hat, i, j, same, t) -> torch.Tensor:
        """Per-column KL(q(x_{t-1} | x_t = j, x_0 = i) || p(x_{t-1} | x_t = j)), shape (n, C).

        With ``u = 1/K``, ``c1 = (1 - abar_t/abar_s) u`` and ``c2 = (1 - abar_s) u`` (``s = t-1``):
        ``q_k`` is ``c1 c2 / Zq`` except at ``k = i`` and ``k = j``; ``p_k = f1_k f2_k / Zp`` with
        ``f1_k = c1 + (abar_t/abar_s) [k = j]`` and ``f2_k = c2 + abar_s x0'_k``, where ``x0'`` is
        the predicted ``x_0`` distribution reweighted by ``1 / q(x_t | x_0)`` (see
        :meth:`model_posterior_probs`).
        """
        dev = log_x0_hat.device
        K = self.cards_t.to(dev)
        a_t, a_s = self._abar(t), self._abar(t - 1)  # (n, 1)
        a_ts = a_t / a_s
        c1, c2 = (1 - a_ts) / K, (1 - a_s) / K  # (n, C)
        samef = same.to(log_x0_hat.dtype)
        # true posterior: uniform base plus bumps at i and j
        zq = K * c1 * c2 + c1 * a_s + a_ts * c2 + a_ts * a_s * samef
        base = c1 * c2 / zq
        q_i = base + (c1 * a_s + samef * (a_ts * c2 + a_ts * a_s)) / zq
        q_j = (base + a_ts * c2 / zq) * (1 - samef)  # only used when j != i
        n_special = 2 - samef
        neg_entropy = (
            (K - n_special) * torch.xlogy(base, base)
            + torch.xlogy(q_i, q_i)
            + torch.xlogy(q_j, q_j)
        )
        # model posterior
        log_x0p_j = log_x0_hat.gather(1, j)
        x0p_j = log_x0p_j.exp()
        l0 = (1 - a_t) / K
        rho = l0 / (l0 + a_t)  # q(x_t = j | x_0 = k != j) / q(x_t = j | x_0 = j)
        z_r = -torch.expm1(log_x0p_j) + x0p_j * rho  # sum_k x0p_k r_k, precise when x0p_j ~ 1
        scale = a_s / z_r
        f2 = log_x0_hat.exp() * self._per_slot(scale) + self._per_slot(c2)  # f2 before the j fix
        log_f2 = f2.clamp(min=_EPS).log()
        f2_j = c2 + scale * rho * x0p_j
        log_f2_j = f2_j.clamp(min=_EPS).log()
        sum_log_f2 = self._segment_sum(log_f2) - log_f2.gather(1, j) + log_f2_j
        x0p_i = log_x0_hat.gather(1, i).exp()
        log_f2_i = torch.where(same, log_f2_j, (c2 + scale * x0p_i).clamp(min=_EPS).log())
        log_f1, log_f1_j = c1.log(), (c1 + a_ts).log()
        log_zp = (c1 + a_ts * f2_j).log()
        sum_log_p = (K - 1) * log_f1 + log_f1_j + sum_log_f2 - K * log_zp
        log_p_i = torch.where(same, log_f1_j, log_f1) + log_f2_i - log_zp
        log_p_j = log_f1_j + log_f2_j - log_zp
        cross = base * sum_log_p + (q_i - base) * log_p_i + (q_j - base * (1 - samef)) * log_p_j
        return neg_entropy - cross

    def loss_reference(
        self, logits_pred: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`loss` computed from the full posterior tables (slow; for tests)."""
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
