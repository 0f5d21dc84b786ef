"""The generic protocol: any table, a (patient-grouped) train/test split, the same arms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from equisynth._utils import as_numpy_rng
from equisynth.evaluation.protocols._base import ProtocolBase, Split, stratum_labels
from equisynth.exceptions import ConfigError, DataError

__all__ = ["GENERIC_ARMS", "GenericProtocol"]

GENERIC_ARMS = ("real", "random_oversample", "smote", "mcrage", "smote_mcrage")


@dataclass
class GenericProtocol(ProtocolBase):
    """Evaluate rebalancing on any table.

    Per seed, the table is split into train and test sets, stratified by outcome x
    sensitive attributes; with ``group_col`` (a patient id) the split is grouped, so
    no patient has rows on both sides (``StratifiedGroupKFold``, one fold as the test
    set). Arm ``real`` trains on the real training rows; the other arms resample them.
    ``group_col`` is never a model input.

    Examples
    --------
    >>> from equisynth.evaluation.datasets import load_kidney_transplant
    >>> ds = load_kidney_transplant()
    >>> p = GenericProtocol(data=ds.frame, target="death", positive=1,
    ...                     sensitive=["race", "sex"], arms=["real"], classifier="lr")
    >>> sorted(set(p.run_seed(0).rows["arm"]))
    ['real']
    """

    group_col: str | None = None

    allowed_arms: ClassVar[tuple[str, ...]] = GENERIC_ARMS
    name: ClassVar[str] = "generic"

    def validate(self) -> None:
        if self.group_col is not None:
            if self.group_col not in self.data.columns:
                raise DataError(
                    f"group column {self.group_col!r} not in the table; "
                    f"available columns: {list(self.data.columns)}"
                )
            if self.group_col in (self.target, *self.sensitive):
                raise ConfigError(
                    f"group column {self.group_col!r} cannot be the target or a sensitive column"
                )
            if self.group_col not in self.exclude_columns:
                self.exclude_columns = (*self.exclude_columns, self.group_col)
        super().validate()

    def _base_arm(self) -> str:
        return "real"

    def split(self, seed: int) -> Split:
        """Train (base) and test sets of ``seed``."""
        rng = as_numpy_rng(seed)
        df = self.data.reset_index(drop=True)
        labels = stratum_labels(df, [self.target, *self.sensitive])
        if labels.value_counts().min() < 2:
            labels = df[self.target].astype(str)
        state = int(rng.integers(2**31 - 1))
        if self.group_col is None:
            train, test = train_test_split(
                df, test_size=self.test_size, stratify=labels, random_state=state
            )
            return Split(base=train.sort_index(), test=test.sort_index())
        n_groups = df[self.group_col].nunique()
        n_splits = max(2, round(1.0 / self.test_size))
        if n_groups < n_splits:
            raise DataError(
                f"group column {self.group_col!r} has {n_groups} distinct values; a grouped "
                f"split with test_size={self.test_size} needs at least {n_splits}"
            )
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=state)
        train_idx, test_idx = next(cv.split(df, labels, groups=df[self.group_col]))
        return Split(base=df.iloc[np.sort(train_idx)], test=df.iloc[np.sort(test_idx)])
