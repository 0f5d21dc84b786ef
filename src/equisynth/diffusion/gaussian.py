"""Gaussian diffusion for the numeric columns (epsilon parametrisation)."""

from __future__ import annotations

import torch

from equisynth.exceptions import ConfigError


def _extract(table: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    out = table.to(t.device)[t]
    return out.reshape(out.shape + (1,) * (ndim - 1))


class GaussianDiffusion:
    """Forward process, loss and reverse steps of a DDPM on continuous features.

    Holds no weights: only float32 tables precomputed in float64 from ``betas``.

    Parameters
    ----------
    betas : torch.Tensor
        Shape ``(T,)``, values in ``(0, 1)``.

    Examples
    --------
    >>> from equisynth.diffusion.schedules import linear_betas
    >>> g = GaussianDiffusion(linear_betas(100))
    >>> x0 = torch.zeros(4, 2); t = torch.full((4,), 99)
    >>> g.q_sample(x0, t, torch.ones(4, 2)).shape
    torch.Size([4, 2])
    """

    def __init__(self, betas: torch.Tensor) -> None:
        b = torch.as_tensor(betas, dtype=torch.float64).flatten()
        if b.numel() < 1 or not bool(((b > 0) & (b < 1)).all()):
            raise ConfigError("betas must be a non-empty 1-D tensor with values in (0, 1)")
        self.num_timesteps = int(b.numel())
        abar = torch.cumprod(1.0 - b, 0)
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        f = torch.float32
        self.betas = b.to(f)
        self.alphas_cumprod = abar.to(f)
        self.sqrt_abar = abar.sqrt().to(f)
        self.sqrt_one_minus_abar = (1 - abar).sqrt().to(f)
        self._abar64 = abar
        post_var = b * (1 - abar_prev) / (1 - abar)
        self.posterior_log_var = (
            torch.log(torch.cat([post_var[1:2], post_var[1:]])).to(f)
            if b.numel() > 1
            else torch.log(b).to(f)
        )
        self.posterior_coef_x0 = (b * abar_prev.sqrt() / (1 - abar)).to(f)
        self.posterior_coef_xt = ((1 - abar_prev) * (1 - b).sqrt() / (1 - abar)).to(f)

    def to(self, device: torch.device | str) -> GaussianDiffusion:
        """Move the tables to ``device`` (in place) and return self."""
        for name in (
            "betas",
            "alphas_cumprod",
            "sqrt_abar",
            "sqrt_one_minus_abar",
            "posterior_log_var",
            "posterior_coef_x0",
            "posterior_coef_xt",
        ):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Draw ``x_t ~ q(x_t | x_0) = N(sqrt(abar_t) x0, (1 - abar_t) I)`` using ``noise``."""
        return (
            _extract(self.sqrt_abar, t, x0.ndim) * x0
            + _extract(self.sqrt_one_minus_abar, t, x0.ndim) * noise
        )

    @staticmethod
    def loss(eps_pred: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Mean squared error between predicted and true noise (0 when there is no numeric column)."""
        if eps_pred.numel() == 0:
            return eps_pred.new_zeros(())
        return torch.mean((eps_pred - noise) ** 2)

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``."""
        return (x_t - _extract(self.sqrt_one_minus_abar, t, x_t.ndim) * eps) / _extract(
            self.sqrt_abar, t, x_t.ndim
        )

    def _clipped(
        self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, clip: float | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0_hat, eps)`` with ``x0_hat`` clipped to ``[-clip, clip]`` and ``eps`` made consistent.

        At the noisiest steps ``sqrt(abar_t)`` is tiny, so ``x0_hat`` amplifies every error of
        ``eps`` (by about 2e4 at the last step of a 1000-step cosine schedule); clipping it to the
        range of the training data and recomputing ``eps`` from the clipped value keeps the
        strided (DDIM) sampler stable.
        """
        x0 = self.predict_x0(x_t, t, eps)
        if clip is None:
            return x0, eps
        x0 = x0.clamp(-clip, clip)
        eps = (x_t - _extract(self.sqrt_abar, t, x_t.ndim) * x0) / _extract(
            self.sqrt_one_minus_abar, t, x_t.ndim
        )
        return x0, eps

    def ddpm_step(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        eps: torch.Tensor,
        generator: torch.Generator | None = None,
        clip: float | None = None,
    ) -> torch.Tensor:
        """One ancestral step ``x_t -> x_{t-1}`` (no noise added at ``t == 0``).

        ``clip``: bound of the predicted ``x_0`` (``None``: no clipping).
        """
        x0, _ = self._clipped(x_t, t, eps, clip)
        mean = (
            _extract(self.posterior_coef_x0, t, x_t.ndim) * x0
            + _extract(self.posterior_coef_xt, t, x_t.ndim) * x_t
        )
        noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
        nonzero = (t > 0).to(x_t.dtype).reshape(-1, *([1] * (x_t.ndim - 1)))
        return (
            mean + nonzero * torch.exp(0.5 * _extract(self.posterior_log_var, t, x_t.ndim)) * noise
        )

    def ddim_step(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        t_prev: torch.Tensor,
        eps: torch.Tensor,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
        clip: float | None = None,
    ) -> torch.Tensor:
        """DDIM step ``x_t -> x_{t_prev}``; ``t_prev < 0`` means "go to x_0".

        ``clip``: bound of the predicted ``x_0`` (``None``: no clipping).
        """
        x0, eps = self._clipped(x_t, t, eps, clip)
        ab_t = _extract(self.alphas_cumprod, t, x_t.ndim)
        ab_p = torch.where(
            t_prev >= 0,
            self.alphas_cumprod.to(t.device)[t_prev.clamp(min=0)],
            torch.ones((), device=t.device),
        )
        ab_p = ab_p.reshape(-1, *([1] * (x_t.ndim - 1)))
        sigma = eta * torch.sqrt((1 - ab_p) / (1 - ab_t) * (1 - ab_t / ab_p))
        out = ab_p.sqrt() * x0 + torch.sqrt((1 - ab_p - sigma**2).clamp(min=0)) * eps
        if eta > 0:
            out = out + sigma * torch.randn(
                x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype
            )
        return out
