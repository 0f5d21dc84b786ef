"""Lean training loop (AdamW + EMA + condition dropout) for the joint diffusion model."""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from equisynth._utils import resolve_device
from equisynth.diffusion.batches import BatchSource, TensorBatches
from equisynth.diffusion.checkpoint import Checkpointer, InterruptGuard
from equisynth.diffusion.distributed import (
    DistContext,
    all_reduce_mean,
    current_context,
    wrap_model,
)
from equisynth.diffusion.gaussian import GaussianDiffusion
from equisynth.diffusion.multinomial import MultinomialDiffusion
from equisynth.exceptions import ConfigError, TrainingInterrupted

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.fit`: EMA weights, the EMA model and the logged losses."""

    ema_state: dict[str, torch.Tensor]
    ema_model: torch.nn.Module
    loss_history: list[tuple[int, float]] = field(default_factory=list)
    n_iter: int = 0


def diffusion_loss(
    model,
    gaussian: GaussianDiffusion,
    multinomial: MultinomialDiffusion,
    x_num,
    x_cat,
    cond,
    t,
    generator,
    shard: slice | None = None,
) -> torch.Tensor:
    """Gaussian MSE + multinomial KL loss of ``model`` on one batch at timesteps ``t``.

    With ``shard``, the noise is drawn for the whole (global) batch, so the random stream
    is the same on every rank, and the model only sees the rows of ``shard``.
    """
    noise = torch.randn(x_num.shape, generator=generator, device=x_num.device)
    x_num_t = gaussian.q_sample(x_num, t, noise)
    x_cat_t = multinomial.q_sample(x_cat, t, generator)
    if shard is not None:  # this rank's rows of a data-parallel global batch
        x_num_t, x_cat_t, noise = x_num_t[shard], x_cat_t[shard], noise[shard]
        x_cat, cond, t = x_cat[shard], cond[shard], t[shard]

    eps, logits = model(x_num_t, x_cat_t, t, cond)  # integer codes: no one-hot table needed
    return gaussian.loss(eps, noise) + multinomial.loss(logits, x_cat, x_cat_t, t)


class Trainer:
    """Train an :class:`MLPDenoiser` on encoded tensors.

    Parameters
    ----------
    n_iter, batch_size : int
    lr, weight_decay : float
        AdamW settings.
    ema_decay : float
        EMA of the weights (kept in a separate copy of the model).
    cond_drop_prob : float
        Probability of replacing a row's condition by the null token (classifier-free guidance).
    device : str
    progress : bool
        tqdm bar with ETA.
    log_every : int
        Record (and log) the loss every ``log_every`` steps; the only host synchronisation.
    eval_every : int or None, callback : callable or None
        ``callback(step, model, ema_model)`` every ``eval_every`` steps (on every rank).
    checkpointer : Checkpointer or None
        Periodic checkpoints, resume, and a clean stop on SIGINT / SIGTERM
        (see :mod:`equisynth.diffusion.checkpoint`).
    distributed : DistContext or None
        Data-parallel context; ``None`` uses the initialised process group if any (``torchrun``),
        else one process. ``batch_size`` is per process.

    Examples
    --------
    >>> from equisynth.diffusion import MLPDenoiser, GaussianDiffusion, MultinomialDiffusion, linear_betas
    >>> b = linear_betas(20); m = MLPDenoiser(1, [2], 2, hidden=(8,), dim_t=8)
    >>> tr = Trainer(n_iter=5, batch_size=4)
    >>> res = tr.fit(m, GaussianDiffusion(b), MultinomialDiffusion([2], b), torch.randn(10, 1),
    ...              torch.zeros(10, 1, dtype=torch.long), torch.zeros(10, dtype=torch.long),
    ...              torch.Generator().manual_seed(0))
    >>> res.n_iter
    5
    """

    def __init__(
        self,
        *,
        n_iter: int = 10000,
        batch_size: int = 1024,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        ema_decay: float = 0.999,
        cond_drop_prob: float = 0.1,
        device: str = "cpu",
        progress: bool = False,
        log_every: int = 100,
        eval_every: int | None = None,
        callback: Callable[[int, torch.nn.Module, torch.nn.Module], None] | None = None,
        checkpointer: Checkpointer | None = None,
        distributed: DistContext | None = None,
    ) -> None:
        self.n_iter = n_iter
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.ema_decay = ema_decay
        self.cond_drop_prob = cond_drop_prob
        self.device = device
        self.progress = progress
        self.log_every = log_every
        self.eval_every = eval_every
        self.callback = callback
        self.checkpointer = checkpointer
        self.distributed = distributed

    def _validate(self) -> None:
        if int(self.n_iter) < 1 or int(self.batch_size) < 1:
            raise ConfigError(
                f"n_iter and batch_size must be >= 1, got {self.n_iter}, {self.batch_size}"
            )
        if not 0.0 <= self.ema_decay < 1.0 or not 0.0 <= self.cond_drop_prob <= 1.0:
            raise ConfigError(
                f"need 0 <= ema_decay < 1 and 0 <= cond_drop_prob <= 1, got "
                f"{self.ema_decay}, {self.cond_drop_prob}"
            )

    def fit(
        self,
        model: torch.nn.Module,
        gaussian: GaussianDiffusion,
        multinomial: MultinomialDiffusion,
        x_num: torch.Tensor,
        x_cat: torch.Tensor,
        cond: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> TrainResult:
        """Train ``model`` in place on rows held in memory; return EMA weights and the loss history."""
        self._validate()
        return self.fit_batches(
            model, gaussian, multinomial, TensorBatches(x_num, x_cat, cond), generator
        )

    def fit_batches(
        self,
        model: torch.nn.Module,
        gaussian: GaussianDiffusion,
        multinomial: MultinomialDiffusion,
        batches: BatchSource,
        generator: torch.Generator | None = None,
    ) -> TrainResult:
        """Train ``model`` in place on mini-batches drawn from ``batches`` (in memory or streamed).

        In a multi-process job (see :mod:`equisynth.diffusion.distributed`) every rank draws the
        same global batch of ``world_size * batch_size`` rows and trains on its own slice under
        ``DistributedDataParallel``; ``generator`` must be seeded identically on every rank.
        With a ``checkpointer``, training resumes from its newest checkpoint, saves one every
        ``checkpointer.every`` steps and at the end, and on SIGINT / SIGTERM saves one and
        raises :class:`~equisynth.exceptions.TrainingInterrupted`.
        """
        self._validate()
        ctx = self.distributed if self.distributed is not None else current_context()
        dev = resolve_device(self.device)
        model.to(dev).train()
        gaussian.to(dev)
        multinomial.to(dev)
        batches.to(dev)
        if generator is None:
            generator = torch.Generator(device=dev).manual_seed(0)
        net = wrap_model(model, ctx)  # DDP broadcasts rank 0's weights to every rank
        self.model_ = model
        self.ema_model_ = copy.deepcopy(model).eval().requires_grad_(False)
        self.optimizer_ = torch.optim.AdamW(
            model.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        self.step_ = 0
        history: list[tuple[int, float]] = []
        ckpt = self.checkpointer
        n_iter = int(self.n_iter)
        global_bs = int(self.batch_size) * ctx.world_size
        if ckpt is not None:
            restored = ckpt.load()
            if restored is not None:
                state, meta = restored
                if int(meta.get("global_batch", global_bs)) != global_bs:
                    raise ConfigError(
                        f"the checkpoint was trained with a global batch of {meta['global_batch']} "
                        f"rows, this run has {global_bs} (processes x batch_size); keep the "
                        "product the same to resume"
                    )
                if int(meta["step"]) > n_iter:
                    raise ConfigError(
                        f"the checkpoint is at step {meta['step']}, beyond n_iter={n_iter}; "
                        "resume with n_iter at least that large"
                    )
                self.load_state_dict(model, state)
                generator.set_state(state["rng.generator"])
                batches.load_state_dict(
                    {k[len("batches.") :]: v for k, v in state.items() if k.startswith("batches.")}
                )
                history = [(int(s), float(v)) for s, v in meta.get("loss_history", [])]
                if ctx.is_main:
                    logger.info("resumed from the checkpoint of step %d", self.step_)
        params = [p for p in model.parameters()]
        ema_params = [p for p in self.ema_model_.parameters()]
        T = gaussian.num_timesteps
        null = model.null_token
        shard = ctx.shard(global_bs)
        show = self.progress and ctx.is_main
        bar = tqdm(total=n_iter, initial=self.step_, disable=not show, desc="training")
        guard = InterruptGuard() if ckpt is not None else contextlib.nullcontext()
        with guard:
            for step in range(self.step_ + 1, n_iter + 1):
                # The global batch is drawn identically on every rank (same generator state);
                # each rank keeps its slice, so k ranks x batch b == 1 rank x batch k*b.
                x0_num, x0_cat, c = batches.next_batch(global_bs, generator)
                t = torch.randint(0, T, (global_bs,), generator=generator, device=dev)
                if self.cond_drop_prob > 0:
                    drop = (
                        torch.rand(global_bs, generator=generator, device=dev) < self.cond_drop_prob
                    )
                    c = torch.where(drop, torch.full_like(c, null), c)
                loss = diffusion_loss(
                    net, gaussian, multinomial, x0_num, x0_cat, c, t, generator,
                    shard=shard if ctx.is_distributed else None,
                )  # fmt: skip
                self.optimizer_.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer_.step()
                # EMA with the usual warm-up: early on the average follows the weights closely, so
                # that short runs are not dominated by the random initial weights.
                decay = min(float(self.ema_decay), (1.0 + step) / (10.0 + step))
                with torch.no_grad():
                    torch._foreach_lerp_(ema_params, params, 1.0 - decay)
                self.step_ = step
                if step % self.log_every == 0 or step == n_iter:
                    val = all_reduce_mean(loss, ctx)
                    history.append((step, val))
                    if ctx.is_main:
                        logger.debug("step %d loss %.4f", step, val)
                    bar.set_postfix(loss=f"{val:.4f}")
                if show:
                    bar.update(1)
                if self.callback is not None and self.eval_every and step % self.eval_every == 0:
                    self.callback(step, model, self.ema_model_)
                if ckpt is not None:
                    stop = guard.requested(ctx)
                    if stop or ckpt.due(step) or step == n_iter:
                        path = self._save_checkpoint(generator, batches, history, global_bs, ctx)
                    if stop:
                        bar.close()
                        raise TrainingInterrupted(
                            f"training interrupted at step {step} of {n_iter}; checkpoint saved "
                            f"to {path}; rerun with resume=True (CLI: --resume) to continue",
                            step=step,
                            checkpoint=str(path),
                            signum=int(guard.signum or 0),
                        )
        bar.close()
        self.loss_history_ = history
        ema_state = {k: v.detach().clone() for k, v in self.ema_model_.state_dict().items()}
        return TrainResult(
            ema_state=ema_state, ema_model=self.ema_model_, loss_history=history, n_iter=self.step_
        )

    def _save_checkpoint(self, generator, batches, history, global_bs, ctx):
        state = self.state_dict()
        state["rng.generator"] = generator.get_state()
        for k, v in batches.state_dict().items():
            state[f"batches.{k}"] = v
        meta = {
            "n_iter": int(self.n_iter),
            "global_batch": global_bs,
            "world_size": ctx.world_size,
            "loss_history": [[s, v] for s, v in history],
        }
        return self.checkpointer.save(self.step_, state, meta)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Flat dict of tensors: ``model.*``, ``ema.*``, ``optim.*`` and ``step`` (safetensors-friendly)."""
        out: dict[str, torch.Tensor] = {}
        for k, v in self.model_.state_dict().items():
            out[f"model.{k}"] = v.detach().cpu().contiguous()
        for k, v in self.ema_model_.state_dict().items():
            out[f"ema.{k}"] = v.detach().cpu().contiguous()
        opt = self.optimizer_.state_dict()
        for pid, st in opt["state"].items():
            for name, v in st.items():
                out[f"optim.{pid}.{name}"] = torch.as_tensor(v).detach().cpu().contiguous()
        out["step"] = torch.tensor(self.step_, dtype=torch.int64)
        return out

    def load_state_dict(self, model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
        """Restore model, EMA, optimizer moments and step from :meth:`state_dict` output."""
        model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
        self.model_ = model
        self.ema_model_ = copy.deepcopy(model).eval().requires_grad_(False)
        self.ema_model_.load_state_dict(
            {k[4:]: v for k, v in state.items() if k.startswith("ema.")}
        )
        self.optimizer_ = torch.optim.AdamW(
            model.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        opt = self.optimizer_.state_dict()
        st: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in state.items():
            if k.startswith("optim."):
                _, pid, name = k.split(".", 2)
                st.setdefault(int(pid), {})[name] = v
        opt["state"] = st
        self.optimizer_.load_state_dict(opt)
        self.step_ = int(state["step"])
