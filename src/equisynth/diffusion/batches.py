"""Where the trainer's mini-batches come from: tensors in memory, or a stream of chunks.

A batch source draws one *global* batch per training step from a ``torch.Generator`` that
is seeded identically on every rank of a data-parallel job; each rank then keeps its own
slice (see :mod:`equisynth.diffusion.distributed`). Sources expose their position as
tensors (``state_dict``) so that a checkpoint can resume the exact data order.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from equisynth.exceptions import ConfigError

__all__ = ["BatchSource", "TensorBatches"]


@runtime_checkable
class BatchSource(Protocol):
    """What :meth:`Trainer.fit_batches` needs from a data source."""

    def to(self, device: torch.device) -> BatchSource:
        """Move (or plan to move) the batches to ``device``."""

    def next_batch(
        self, size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_num float32, x_cat int64, cond int64)`` of ``size`` rows on the device."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Position in the data, as tensors (empty when the source is stateless)."""

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore a position saved by :meth:`state_dict`."""


class TensorBatches:
    """Rows drawn uniformly with replacement from tensors held in memory (stateless).

    Examples
    --------
    >>> src = TensorBatches(torch.zeros(10, 2), torch.zeros(10, 1, dtype=torch.long),
    ...                     torch.zeros(10, dtype=torch.long))
    >>> [tuple(t.shape) for t in src.next_batch(4, torch.Generator().manual_seed(0))]
    [(4, 2), (4, 1), (4,)]
    """

    def __init__(self, x_num: torch.Tensor, x_cat: torch.Tensor, cond: torch.Tensor) -> None:
        self.x_num = torch.as_tensor(x_num, dtype=torch.float32)
        self.x_cat = torch.as_tensor(x_cat, dtype=torch.long)
        self.cond = torch.as_tensor(cond, dtype=torch.long)
        n = self.cond.shape[0]
        if self.x_num.shape[0] != n or self.x_cat.shape[0] != n or n == 0:
            raise ConfigError(
                f"x_num, x_cat and cond must have the same non-zero number of rows, got "
                f"{self.x_num.shape[0]}, {self.x_cat.shape[0]}, {n}"
            )

    def to(self, device: torch.device) -> TensorBatches:
        self.x_num = self.x_num.to(device)
        self.x_cat = self.x_cat.to(device)
        self.cond = self.cond.to(device)
        return self

    def next_batch(self, size: int, generator: torch.Generator):
        idx = torch.randint(
            0, self.cond.shape[0], (size,), generator=generator, device=self.cond.device
        )
        return self.x_num[idx], self.x_cat[idx], self.cond[idx]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        return None
