"""Patient-level prediction tasks over longitudinal EHR: the :class:`SequenceTask` container.

A :class:`SequenceTask` is what the EHR generator, the downstream sequence model and the
FairSynth feedback loop consume: one row per patient with categorical demographics, a 0/1 label
and the patient's input visits, each a sorted set of integer code ids into a shared vocabulary.
It holds no torch tensors (``data`` never imports torch).

The task builders (``make_task``) that turn a :class:`~equisynth.data.cohort.Cohort` into a
:class:`SequenceTask` live next to the container; every task's input visits end strictly before
the event that defines its label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from equisynth.exceptions import DataError

__all__ = ["SequenceTask", "group_codes"]


def group_codes(demographics: pd.DataFrame, sensitive: Sequence[str]) -> pd.Series:
    """Intersectional group label per row, e.g. ``"gender=F & race=black"`` (fairlearn style)."""
    sensitive = list(sensitive)
    missing = [c for c in sensitive if c not in demographics.columns]
    if not sensitive or missing:
        raise DataError(
            f"sensitive column(s) {missing or sensitive} not among the demographics "
            f"{list(demographics.columns)}; name one or more of them"
        )
    parts = [f"{c}=" + demographics[c].astype(str) for c in sensitive]
    out = parts[0]
    for p in parts[1:]:
        out = out + " & " + p
    return out.rename("group").reset_index(drop=True)


@dataclass
class SequenceTask:
    """Patients as (demographics, label, visits of codes) for one prediction task.

    Parameters
    ----------
    patient_ids : array of str, shape (n,)
    demographics : DataFrame, shape (n, d)
        Categorical columns (values are strings); index ``0..n-1``.
    label : array of int, shape (n,)
        0/1 outcome of the task.
    visits : list of list of int arrays
        Per patient, per visit: the sorted unique code ids (into ``vocab``) of that visit. Every
        patient has at least one visit and every visit at least one code.
    vocab : list of str
        Code tokens ``"vocabulary:code"``; ids index this list.
    task : str
        Name of the task (e.g. ``"mortality_next_visit"``).
    is_synthetic : array of bool, shape (n,), optional
        Defaults to all False.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> t = SequenceTask(
    ...     patient_ids=np.array(["p1", "p2"]),
    ...     demographics=pd.DataFrame({"sex": ["F", "M"]}),
    ...     label=np.array([1, 0]),
    ...     visits=[[np.array([0, 2])], [np.array([1]), np.array([0, 1])]],
    ...     vocab=["dx:a", "dx:b", "rx:c"],
    ...     task="demo",
    ... )
    >>> t.n_patients, t.n_codes, t.groups(["sex"]).tolist()
    (2, 3, ['sex=F', 'sex=M'])
    """

    patient_ids: np.ndarray
    demographics: pd.DataFrame
    label: np.ndarray
    visits: list[list[np.ndarray]]
    vocab: list[str]
    task: str = "task"
    is_synthetic: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        self.patient_ids = np.asarray(self.patient_ids).astype(str)
        n = len(self.patient_ids)
        if not isinstance(self.demographics, pd.DataFrame):
            raise DataError(
                f"demographics must be a DataFrame, got {type(self.demographics).__name__}"
            )
        self.demographics = self.demographics.reset_index(drop=True)
        self.label = np.asarray(self.label)
        if self.is_synthetic is None:
            self.is_synthetic = np.zeros(n, dtype=bool)
        self.is_synthetic = np.asarray(self.is_synthetic, dtype=bool)
        self.vocab = [str(v) for v in self.vocab]
        sizes = {
            "demographics": len(self.demographics),
            "label": len(self.label),
            "visits": len(self.visits),
            "is_synthetic": len(self.is_synthetic),
        }
        bad = {k: v for k, v in sizes.items() if v != n}
        if bad:
            raise DataError(f"SequenceTask parts must have {n} patients (patient_ids), got {bad}")
        if self.demographics.isna().any().any():
            col = self.demographics.columns[self.demographics.isna().any()].tolist()
            raise DataError(
                f"demographic column(s) {col} have missing values; fill them (e.g. 'unknown') "
                "or drop those patients"
            )
        if n and not np.isin(self.label, (0, 1)).all():
            raise DataError(
                f"label must be 0/1, got values {sorted(set(np.unique(self.label).tolist()))[:10]}"
            )
        self.label = self.label.astype(np.int64)
        n_codes = len(self.vocab)
        visits = []
        for i, patient in enumerate(self.visits):
            if len(patient) == 0:
                raise DataError(
                    f"patient {self.patient_ids[i]!r} has no visit; every patient needs at "
                    "least one visit with codes"
                )
            pv = []
            for v in patient:
                arr = np.unique(np.asarray(v, dtype=np.int64))
                if arr.size == 0:
                    raise DataError(
                        f"patient {self.patient_ids[i]!r} has a visit without codes; drop empty "
                        "visits before building the task"
                    )
                if arr[0] < 0 or arr[-1] >= n_codes:
                    raise DataError(
                        f"patient {self.patient_ids[i]!r} has code id {int(arr[-1])} outside the "
                        f"vocabulary of {n_codes} codes"
                    )
                pv.append(arr)
            visits.append(pv)
        self.visits = visits

    # ------------------------------------------------------------------ views
    @property
    def n_patients(self) -> int:
        return len(self.patient_ids)

    @property
    def n_codes(self) -> int:
        return len(self.vocab)

    def visit_counts(self) -> np.ndarray:
        """Number of visits of each patient."""
        return np.array([len(p) for p in self.visits], dtype=np.int64)

    def groups(self, sensitive: Sequence[str]) -> pd.Series:
        """Intersectional group label of each patient (see :func:`group_codes`)."""
        return group_codes(self.demographics, sensitive)

    def visit_sets(self) -> list[list[frozenset[str]]]:
        """Patients as lists of visits as sets of code tokens (for the quality metrics)."""
        vocab = self.vocab
        return [[frozenset(vocab[j] for j in v) for v in p] for p in self.visits]

    # ------------------------------------------------------------------ algebra
    def subset(self, idx) -> SequenceTask:
        """The patients at positions ``idx`` (integer positions or a boolean mask)."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return SequenceTask(
            patient_ids=self.patient_ids[idx],
            demographics=self.demographics.iloc[idx].reset_index(drop=True),
            label=self.label[idx],
            visits=[self.visits[i] for i in idx],
            vocab=list(self.vocab),
            task=self.task,
            is_synthetic=self.is_synthetic[idx],
        )

    def concat(self, other: SequenceTask) -> SequenceTask:
        """``self`` then ``other`` (same vocabulary and demographic columns required)."""
        if list(other.vocab) != list(self.vocab):
            raise DataError("cannot concatenate tasks with different vocabularies")
        if list(other.demographics.columns) != list(self.demographics.columns):
            raise DataError(
                f"cannot concatenate tasks with different demographics: "
                f"{list(self.demographics.columns)} vs {list(other.demographics.columns)}"
            )
        return SequenceTask(
            patient_ids=np.concatenate([self.patient_ids, other.patient_ids]),
            demographics=pd.concat([self.demographics, other.demographics], ignore_index=True),
            label=np.concatenate([self.label, other.label]),
            visits=[*self.visits, *other.visits],
            vocab=list(self.vocab),
            task=self.task,
            is_synthetic=np.concatenate([self.is_synthetic, other.is_synthetic]),
        )
