"""Streaming fit of the tabular generator on a Parquet file (see ``fit_parquet``).

Training reads the file chunk by chunk: every epoch visits the row groups in a new random
order (drawn from the training generator, identical on every rank), reads each as chunks of
``batch_rows`` rows, encodes a chunk, and draws ``ceil(rows / global_batch)`` mini-batches
from it uniformly with replacement before moving on. Memory holds one encoded chunk; the
chunk position is saved in checkpoints and restored on resume.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch

from equisynth.data.schema import TableSchema
from equisynth.data.streaming import copy_with_seed, iter_parquet, open_parquet, scan_parquet

__all__ = ["ParquetBatches", "prepare_parquet"]

logger = logging.getLogger(__name__)


def _chunk_seed(seed: int, group: int, chunk: int) -> int:
    """Seed of the fill values of one chunk: fixed per row across epochs, as in memory."""
    return int(np.random.default_rng([int(seed), group, chunk]).integers(0, 2**63 - 1))


class ParquetBatches:
    """A :class:`~equisynth.diffusion.batches.BatchSource` streaming a Parquet file.

    Parameters
    ----------
    path : str or Path
    encode : callable
        ``encode(frame, seed) -> (x_num, x_cat, cond)`` numpy arrays of one chunk.
    batch_rows : int
        Rows per chunk.
    seed : int
        Base seed of the chunks' missing-value fills.
    """

    def __init__(self, path, encode, *, batch_rows: int, seed: int) -> None:
        self.path = Path(path)
        self.encode = encode
        self.batch_rows = int(batch_rows)
        self.seed = int(seed)
        pf = open_parquet(self.path)
        self.groups = [i for i in range(pf.num_row_groups) if pf.metadata.row_group(i).num_rows]
        self.device = torch.device("cpu")
        self.epoch = 0
        self.order = torch.zeros(0, dtype=torch.int64)
        self.pos = -1  # index into order of the current row group
        self.chunk = -1  # index of the current chunk in that row group
        self.steps_left = 0
        self._iter = None
        self._data = None

    def to(self, device: torch.device) -> ParquetBatches:
        self.device = torch.device(device)
        return self

    # -------------------------------------------------------------- reading
    def _open_group(self, skip: int) -> None:
        pf = open_parquet(self.path)
        group = int(self.order[self.pos])
        self._iter = iter_parquet(pf, batch_rows=self.batch_rows, row_groups=[group])
        for _ in range(skip):
            next(self._iter)

    def _load(self, frame) -> None:
        group = int(self.order[self.pos])
        x_num, x_cat, cond = self.encode(frame, _chunk_seed(self.seed, group, self.chunk))
        self._data = (
            torch.as_tensor(x_num, dtype=torch.float32).to(self.device),
            torch.as_tensor(x_cat, dtype=torch.long).to(self.device),
            torch.as_tensor(cond, dtype=torch.long).to(self.device),
        )

    def _advance(self, size: int, generator: torch.Generator) -> None:
        frame = None
        if self._iter is not None:
            frame = next(self._iter, None)
            if frame is not None:
                self.chunk += 1
        while frame is None:
            self.pos += 1
            if self.pos >= len(self.order):
                if len(self.order):
                    self.epoch += 1
                perm = torch.randperm(
                    len(self.groups), generator=generator, device=generator.device
                )
                self.order = torch.as_tensor(self.groups, dtype=torch.int64)[perm.cpu()]
                self.pos = 0
                logger.debug("epoch %d: row groups in order %s", self.epoch, self.order.tolist())
            self.chunk = 0
            self._open_group(skip=0)
            frame = next(self._iter, None)
        self._load(frame)
        self.steps_left = max(1, math.ceil(len(frame) / size))

    def next_batch(self, size: int, generator: torch.Generator):
        if self._data is None or self.steps_left <= 0:
            self._advance(size, generator)
        x_num, x_cat, cond = self._data
        idx = torch.randint(0, cond.shape[0], (size,), generator=generator, device=cond.device)
        self.steps_left -= 1
        return x_num[idx], x_cat[idx], cond[idx]

    # -------------------------------------------------------------- state
    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            "position": torch.tensor(
                [self.epoch, self.pos, self.chunk, self.steps_left], dtype=torch.int64
            ),
            "order": self.order.clone(),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.epoch, self.pos, self.chunk, self.steps_left = (int(v) for v in state["position"])
        self.order = state["order"].to(torch.int64).clone()
        self._iter, self._data = None, None
        if self.pos >= 0:
            self._open_group(skip=self.chunk)
            self._load(next(self._iter))


def prepare_parquet(gen, path, condition_on, *, batch_rows, sample_rows, seeds):
    """Scan ``path``, set the generator's fitted schema / strata / encoder, return the source."""
    scan = scan_parquet(
        path,
        condition_on=condition_on,
        overrides=gen.schema_overrides,
        batch_rows=batch_rows,
        sample_rows=sample_rows,
        random_state=seeds["encoder"],
    )
    gen.columns_ = list(scan.schema.names)
    gen.condition_on_ = list(condition_on)
    gen.schema_ = scan.schema
    gen.strata_ = scan.strata
    gen.stratum_counts_ = list(scan.stratum_counts)
    gen.data_columns_ = [c for c in gen.columns_ if c not in condition_on]
    gen.encoder_ = scan.fit_encoder(
        gen.data_columns_, numeric_transform=gen.numeric_transform, random_state=seeds["encoder"]
    )
    gen.d_num_ = len(gen.encoder_.num_columns_)
    gen.cardinalities_ = [int(k) for k in gen.encoder_.cardinalities_]
    extremes = _encoded_extremes(gen.encoder_, TableSchema(gen.encoder_.schema_.columns))
    gen.timesteps_ = gen._resolve_timesteps(extremes)
    gen.clip_x0_ = float(np.abs(extremes).max()) if extremes.size else None
    logger.info(
        "scanned %s: %d rows, %d columns, %d strata",
        path,
        scan.n_rows,
        len(gen.columns_),
        len(scan.stratum_counts),
    )
    encoder, strata, data_columns = gen.encoder_, gen.strata_, gen.data_columns_

    def encode(frame, seed):
        enc = copy_with_seed(encoder, seed).transform(frame[data_columns])
        return enc.x_num, enc.x_cat, strata.encode(frame)

    return ParquetBatches(path, encode, batch_rows=batch_rows, seed=seeds["encoder"]), scan.n_rows


def _encoded_extremes(encoder, schema: TableSchema) -> np.ndarray:
    """Encoded rows of every numeric column's minimum and maximum.

    The numeric encodings are monotone, and missing values are filled with observed values,
    so these two rows bound the encoded table exactly (what ``fit`` reads off ``x_num``).
    """
    import pandas as pd

    data = {}
    for spec in schema.columns:
        if spec.kind in ("continuous", "integer"):
            data[spec.name] = [spec.minimum, spec.maximum]
        else:
            data[spec.name] = pd.Series([spec.categories[0]] * 2, dtype=object)
    return encoder.transform(pd.DataFrame(data)).x_num
