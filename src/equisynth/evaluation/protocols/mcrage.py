"""The MCRAGE paper's experiment (Behal et al., arXiv 2310.18430) on the patient-treatment table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from equisynth._utils import as_numpy_rng
from equisynth.evaluation.protocols._base import ProtocolBase, Split, stratum_labels
from equisynth.exceptions import ConfigError, DataError

__all__ = ["MCRAGE_ARMS", "MCRAGEProtocol"]

MCRAGE_ARMS = ("original", "imbalanced", "random_oversample", "smote", "mcrage", "smote_mcrage")


def _sample_fraction(df: pd.DataFrame, by: str, fraction: float, rng) -> pd.DataFrame:
    """Keep ``fraction`` of the rows of each level of ``by`` (at least one row per level)."""
    keep = []
    for _, part in df.groupby(by, sort=True):
        n = max(1, round(fraction * len(part)))
        keep.append(part.sample(n=n, random_state=int(rng.integers(2**31 - 1))))
    return pd.concat(keep).sort_index()


@dataclass
class MCRAGEProtocol(ProtocolBase):
    """The paper's protocol: balance SEX, split, then keep 10% of the female training rows.

    Per seed: (1) undersample the larger sensitive group so that every level of the
    (single) sensitive attribute has as many rows as the smallest; (2) stratified
    train/test split on outcome x sensitive; (3) the imbalanced base set keeps
    ``keep_fraction`` of the ``minority`` training rows (stratified by outcome).
    Arms: ``original`` (the balanced training set, the control), ``imbalanced``
    (the base set), and resampled versions of the base set. All arms are scored on
    the same untouched test set.

    Examples
    --------
    >>> from equisynth.evaluation.datasets import load_patient_treatment  # doctest: +SKIP
    >>> ds = load_patient_treatment("patient_treatment.csv")  # doctest: +SKIP
    >>> p = MCRAGEProtocol(data=ds.frame, target="SOURCE", positive="in", sensitive=["SEX"],
    ...                    arms=["imbalanced", "smote"])  # doctest: +SKIP
    >>> p.run_seed(0).rows.head()  # doctest: +SKIP
    """

    minority: object = "F"
    keep_fraction: float = 0.1

    allowed_arms: ClassVar[tuple[str, ...]] = MCRAGE_ARMS
    name: ClassVar[str] = "mcrage"

    def validate(self) -> None:
        super().validate()
        if len(self.sensitive) != 1:
            raise ConfigError(
                f"the mcrage protocol uses one sensitive attribute, got {list(self.sensitive)}"
            )
        col = self.sensitive[0]
        if self.minority not in set(self.data[col]):
            raise DataError(
                f"minority level {self.minority!r} not found in sensitive column {col!r}; "
                f"its values are {sorted(map(str, self.data[col].unique()))}"
            )
        if not 0.0 < self.keep_fraction <= 1.0:
            raise ConfigError(f"keep_fraction must be in (0, 1], got {self.keep_fraction!r}")

    def _base_arm(self) -> str:
        return "imbalanced"

    def split(self, seed: int) -> Split:
        """Balanced control training set, imbalanced base set and test set of ``seed``."""
        rng = as_numpy_rng(seed)
        col = self.sensitive[0]
        df = self.data.reset_index(drop=True)
        smallest = int(df[col].value_counts().min())
        parts = [
            part.sample(n=smallest, random_state=int(rng.integers(2**31 - 1)))
            for _, part in df.groupby(col, sort=True)
        ]
        balanced = pd.concat(parts).sort_index()
        train, test = train_test_split(
            balanced,
            test_size=self.test_size,
            stratify=stratum_labels(balanced, [self.target, col]),
            random_state=int(rng.integers(2**31 - 1)),
        )
        train, test = train.sort_index(), test.sort_index()
        is_minority = (train[col] == self.minority).to_numpy()
        kept = _sample_fraction(train[is_minority], self.target, self.keep_fraction, rng)
        base = pd.concat([train[~is_minority], kept]).sort_index()
        left_out = train.drop(index=base.index)
        holdout = pd.concat([test, left_out]).sort_index()
        return Split(base=base, test=test, control=train, holdout=holdout)


def minority_share(split: Split, column: str, level) -> tuple[float, float]:
    """(share of ``level`` in the control set, share in the base set); a protocol check."""
    return (
        float(np.mean(split.control[column] == level)),
        float(np.mean(split.base[column] == level)),
    )
