"""Tensors of the EHR generator: the prefix layout and packed visits of a SequenceTask."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from equisynth.data.tasks import SequenceTask
from equisynth.exceptions import DataError

__all__ = ["PackedVisits", "PrefixLayout", "group_ids"]


class PrefixLayout:
    """Bits of the prefix visit: one-hot of each demographic column (in order), then the label.

    Parameters
    ----------
    columns : list of str
        Demographic columns.
    levels : dict column -> list of str
        Levels of each column, in bit order.

    Examples
    --------
    >>> lay = PrefixLayout.from_frame(pd.DataFrame({"sex": ["F", "M"], "race": ["a", "b"]}))
    >>> lay.n_prefix, lay.one_hot
    (5, [(0, 2), (2, 4)])
    >>> lay.encode(pd.DataFrame({"sex": ["M"], "race": ["a"]})).tolist()
    [[0.0, 1.0, 1.0, 0.0]]
    """

    def __init__(self, columns: Sequence[str], levels: dict[str, list[str]]) -> None:
        self.columns = [str(c) for c in columns]
        self.levels = {c: [str(v) for v in levels[c]] for c in self.columns}
        self.one_hot: list[tuple[int, int]] = []
        start = 0
        for c in self.columns:
            self.one_hot.append((start, start + len(self.levels[c])))
            start += len(self.levels[c])
        self.n_demographic_bits = start
        self.n_prefix = start + 1  # + the label bit

    @classmethod
    def from_frame(cls, demographics: pd.DataFrame) -> PrefixLayout:
        columns = [str(c) for c in demographics.columns]
        if len(set(columns)) != len(columns):
            raise DataError(f"demographic column names must be unique, got {columns}")
        levels = {c: sorted(demographics[c].astype(str).unique().tolist()) for c in columns}
        return cls(columns, levels)

    def to_dict(self) -> dict:
        return {"columns": self.columns, "levels": self.levels}

    @classmethod
    def from_dict(cls, state: dict) -> PrefixLayout:
        return cls(list(state["columns"]), {c: list(v) for c, v in state["levels"].items()})

    def same_as(self, other: PrefixLayout) -> bool:
        return self.columns == other.columns and self.levels == other.levels

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """One-hot demographic bits (n, n_demographic_bits); unknown levels are a DataError."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataError(
                f"demographic column(s) {missing} are missing; the generator was fitted on "
                f"{self.columns}"
            )
        out = np.zeros((len(frame), self.n_demographic_bits), dtype=np.float32)
        for (start, _), c in zip(self.one_hot, self.columns, strict=True):
            col = frame[c]
            if col.isna().any():
                raise DataError(f"demographic column {c!r} has missing values; fill them")
            values = col.astype(str).to_numpy()
            index = {v: i for i, v in enumerate(self.levels[c])}
            unknown = sorted(set(values) - set(index))
            if unknown:
                raise DataError(
                    f"demographic column {c!r} has level(s) {unknown[:5]} not seen in fit; "
                    f"known levels: {self.levels[c]}"
                )
            out[np.arange(len(frame)), start + np.array([index[v] for v in values], dtype=int)] = 1
        return out

    def decode(self, bits: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
        """``(demographics DataFrame of str, label int64)`` from prefix bits (n, n_prefix)."""
        data = {}
        for (start, stop), c in zip(self.one_hot, self.columns, strict=True):
            idx = np.asarray(bits[:, start:stop]).argmax(axis=1)
            data[c] = np.asarray(self.levels[c], dtype=object)[idx]
        frame = pd.DataFrame(data, columns=self.columns)
        return frame, (np.asarray(bits[:, -1]) > 0.5).astype(np.int64)


class PackedVisits:
    """Visits of every patient (the last ``max_visits`` ones) as flat (visit, code) pairs.

    ``batch(idx)`` builds the dense multi-hot tensor ``(B, T, n_codes)`` of the patients ``idx``
    on the device, ``T`` the most visits among them, so memory stays proportional to the codes.
    """

    def __init__(self, visits: list[list[np.ndarray]], n_codes: int, max_visits: int) -> None:
        self.n_codes = int(n_codes)
        kept = [p[-max_visits:] for p in visits]
        self.n_truncated = sum(len(p) > max_visits for p in visits)
        self.lengths = torch.tensor([len(p) for p in kept], dtype=torch.long)
        counts = [sum(len(v) for v in p) for p in kept]
        self.ptr = torch.tensor(np.concatenate([[0], np.cumsum(counts)]), dtype=torch.long)
        t = [np.repeat(np.arange(len(p)), [len(v) for v in p]) for p in kept]
        c = [np.concatenate(p) if p else np.zeros(0, np.int64) for p in kept]
        self.code_t = torch.as_tensor(np.concatenate(t or [np.zeros(0)]), dtype=torch.long)
        self.code_c = torch.as_tensor(np.concatenate(c or [np.zeros(0)]), dtype=torch.long)

    def to(self, device) -> PackedVisits:
        for name in ("lengths", "ptr", "code_t", "code_c"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(visits (B, T, n_codes) float32, lengths (B,))`` of the patients ``idx``."""
        lengths = self.lengths[idx]
        t_max = int(lengths.max())
        seg = self.ptr[idx + 1] - self.ptr[idx]
        total = int(seg.sum())
        row = torch.repeat_interleave(torch.arange(idx.numel(), device=idx.device), seg)
        first = torch.repeat_interleave(self.ptr[idx] - (torch.cumsum(seg, 0) - seg), seg)
        pos = first + torch.arange(total, device=idx.device)
        dense = torch.zeros(idx.numel(), t_max, self.n_codes, device=idx.device)
        dense[row, self.code_t[pos], self.code_c[pos]] = 1.0
        return dense, lengths

    def code_frequency(self) -> np.ndarray:
        """Share of (kept) visits holding each code."""
        counts = np.bincount(self.code_c.cpu().numpy(), minlength=self.n_codes)
        return counts / max(1, int(self.lengths.sum()))

    def digest(self) -> str:
        h = hashlib.sha256()
        for name in ("lengths", "ptr", "code_t", "code_c"):
            h.update(getattr(self, name).cpu().numpy().tobytes())
        return h.hexdigest()


def group_ids(task: SequenceTask, sensitive: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Intersectional group id of each patient and the sorted group labels."""
    labels = task.groups(list(sensitive)).to_numpy()
    names = sorted(set(labels.tolist()))
    index = {g: i for i, g in enumerate(names)}
    return np.array([index[g] for g in labels], dtype=np.int64), names
