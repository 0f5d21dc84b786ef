"""Data-parallel training plumbing: PyTorch's own DistributedDataParallel, launched by ``torchrun``.

Any generator's training loop can use it (the tabular trainer does; the longitudinal EHR
generator can do the same):

1. :func:`init_distributed` joins the process group that ``torchrun`` describes in the
   environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``):
   NCCL when training on CUDA, gloo on CPU. Without ``torchrun`` it returns a one-process
   context and nothing changes.
2. :func:`wrap_model` wraps the module in ``DistributedDataParallel`` (which broadcasts rank
   0's weights and averages gradients during ``backward``).
3. Every rank draws the *same* global batch of ``world_size * batch_size`` rows from a
   generator seeded identically on every rank and keeps its own slice
   (:meth:`DistContext.shard`). The average of the ranks' gradients is then the gradient of
   the whole global batch, so ``k`` processes with batch ``b`` follow the same trajectory as
   one process with batch ``k * b``, up to float summation order.
4. Only rank 0 writes checkpoints, logs and shows progress bars (:attr:`DistContext.is_main`).

Examples
--------
>>> ctx = current_context()           # outside torchrun: one process
>>> ctx.world_size, ctx.is_main, ctx.shard(8)
(1, True, slice(0, 8, None))
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch

from equisynth.exceptions import ConfigError

__all__ = [
    "DistContext",
    "all_reduce_mean",
    "any_rank",
    "barrier",
    "broadcast_ints",
    "current_context",
    "env_world_size",
    "init_distributed",
    "shutdown_distributed",
    "wrap_model",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a data-parallel job.

    Attributes
    ----------
    rank, world_size, local_rank : int
        Global rank, number of processes, rank on this machine (picks the GPU).
    backend : str or None
        ``"nccl"``, ``"gloo"`` or ``None`` for a single process.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes files and logs."""
        return self.rank == 0

    def shard(self, global_size: int) -> slice:
        """This rank's contiguous slice of a global batch of ``global_size`` rows.

        ``global_size`` must be a multiple of ``world_size`` (every rank gets the same
        number of rows, so averaging the ranks' gradients equals the global mean).
        """
        if global_size % self.world_size:
            raise ConfigError(
                f"a global batch of {global_size} rows cannot be split evenly over "
                f"{self.world_size} processes"
            )
        per = global_size // self.world_size
        return slice(self.rank * per, (self.rank + 1) * per)

    def local_device(self, device: torch.device) -> torch.device:
        """``cuda`` becomes ``cuda:LOCAL_RANK`` in a multi-process job; other devices unchanged."""
        if self.is_distributed and device.type == "cuda" and device.index is None:
            return torch.device("cuda", self.local_rank)
        return device

    @property
    def comm_device(self) -> torch.device:
        """Device of the small tensors exchanged between ranks (NCCL needs CUDA tensors)."""
        if self.backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


def env_world_size() -> int:
    """``WORLD_SIZE`` set by ``torchrun`` (1 when absent)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        raise ConfigError(
            f"environment variable WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not an integer"
        ) from None


def current_context() -> DistContext:
    """The context of an already initialised process group, or a one-process context."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return DistContext()
    return DistContext(
        rank=torch.distributed.get_rank(),
        world_size=torch.distributed.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        backend=str(torch.distributed.get_backend()),
    )


def init_distributed(
    device: str | torch.device = "cpu", *, backend: str | None = None, timeout_s: float = 1800.0
) -> DistContext:
    """Join the process group described by ``torchrun``'s environment variables.

    Parameters
    ----------
    device : str or torch.device
        Training device: ``cuda`` selects NCCL and the GPU ``LOCAL_RANK``, ``cpu`` gloo.
    backend : {"nccl", "gloo"}, optional
        Overrides the choice above.
    timeout_s : float
        How long a collective waits for the other ranks before failing.

    Returns
    -------
    DistContext
        A one-process context when ``WORLD_SIZE`` is absent or 1 (nothing is initialised).
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return current_context()
    world = env_world_size()
    if world == 1:
        return DistContext()
    if not torch.distributed.is_available():  # pragma: no cover - builds without distributed
        raise ConfigError("this PyTorch build has no torch.distributed; run a single process")
    missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise ConfigError(
            f"WORLD_SIZE={world} but {missing} are not set; launch with "
            "`torchrun --nproc_per_node N -m equisynth ...`"
        )
    dev = torch.device(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend is None:
        backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device 'cuda' was asked for but CUDA is not available")
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} GPU(s) are "
                "visible; use --nproc_per_node <= number of GPUs"
            )
        torch.cuda.set_device(local_rank)
    torch.distributed.init_process_group(
        backend=backend,
        rank=int(os.environ["RANK"]),
        world_size=world,
        timeout=datetime.timedelta(seconds=timeout_s),
    )
    ctx = current_context()
    logger.info("rank %d of %d joined the process group (%s)", ctx.rank, world, backend)
    return ctx


def shutdown_distributed() -> None:
    """Leave the process group (no-op when none is initialised)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def wrap_model(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """``DistributedDataParallel(model)`` in a multi-process job, ``model`` itself otherwise.

    DDP broadcasts rank 0's parameters at construction, so every rank starts from the same
    weights, and averages gradients over the ranks in ``backward``.
    """
    if not ctx.is_distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    param = next(model.parameters())
    device_ids = [param.device.index] if param.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def all_reduce_mean(value: torch.Tensor, ctx: DistContext) -> float:
    """Mean of a scalar over the ranks (the value itself in a single process)."""
    if not ctx.is_distributed:
        return float(value.detach())
    buf = value.detach().reshape(1).to(ctx.comm_device, torch.float64)
    torch.distributed.all_reduce(buf, op=torch.distributed.ReduceOp.SUM)
    return float(buf) / ctx.world_size


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True on every rank when ``flag`` is true on at least one (e.g. a stop request)."""
    if not ctx.is_distributed:
        return bool(flag)
    buf = torch.tensor([int(flag)], dtype=torch.int32, device=ctx.comm_device)
    torch.distributed.all_reduce(buf, op=torch.distributed.ReduceOp.MAX)
    return bool(buf.item())


def broadcast_ints(values: list[int], ctx: DistContext) -> list[int]:
    """Rank 0's integers on every rank (seeds drawn on rank 0, a checkpoint step...)."""
    if not ctx.is_distributed:
        return [int(v) for v in values]
    buf = torch.tensor([int(v) for v in values], dtype=torch.int64, device=ctx.comm_device)
    torch.distributed.broadcast(buf, src=0)
    return [int(v) for v in buf.tolist()]


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op in a single process)."""
    if ctx.is_distributed:
        torch.distributed.barrier()
