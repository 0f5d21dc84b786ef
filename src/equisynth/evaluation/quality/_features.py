"""A common numeric feature space for distances and classifiers, fitted on the real data.

Numeric columns are centred on the real median and divided by the real inter-quartile range
(robust scaling; falls back to the standard deviation, then 1, for near-constant columns); a
numeric column with missing values in the real data also gets a 0/1 "is missing" feature and its
missing values are imputed with the median. Categorical columns (non-numeric dtypes, booleans and
numeric columns with at most two distinct real values) are one-hot encoded over the real levels;
missing is a level of its own and a level unseen in the real data encodes as all zeros.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from equisynth.data.schema import MAX_ABS_VALUE
from equisynth.exceptions import DataError

__all__ = ["FeatureSpace", "categorical_columns", "check_same_columns"]

_MISSING = "__missing__"


def categorical_columns(df: pd.DataFrame) -> list[str]:
    """Columns treated as categorical: non-numeric, boolean, or numeric with <= 2 distinct values."""
    out = []
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
            out.append(col)
        elif s.dropna().nunique() <= 2:
            out.append(col)
    return out


def check_same_columns(real: pd.DataFrame, other: pd.DataFrame, name: str = "synthetic") -> None:
    """Raise :class:`DataError` naming the columns that ``other`` lacks (extra columns are fine)."""
    if not isinstance(real, pd.DataFrame) or not isinstance(other, pd.DataFrame):
        raise DataError(
            f"expected pandas DataFrames, got {type(real).__name__} and {type(other).__name__}"
        )
    missing = [c for c in real.columns if c not in other.columns]
    if missing:
        raise DataError(f"the {name} table lacks column(s) {missing} of the real table")
    if len(real) == 0 or len(other) == 0:
        raise DataError(
            f"expected non-empty tables, got {len(real)} real and {len(other)} {name} rows"
        )


class FeatureSpace:
    """Robust-scaled numeric + one-hot categorical features, fitted on the real table.

    Parameters
    ----------
    categorical : sequence of str, optional
        Columns to treat as categorical; default :func:`categorical_columns` of the real table.

    Examples
    --------
    >>> real = pd.DataFrame({"age": [30.0, 40.0, 50.0, None], "sex": ["F", "M", "F", "F"]})
    >>> FeatureSpace().fit(real).transform(real).shape  # age, age missing, sex=F, sex=M
    (4, 4)
    """

    def __init__(self, *, categorical: Sequence[str] | None = None):
        self.categorical = categorical

    def fit(self, real: pd.DataFrame) -> FeatureSpace:
        cats = list(categorical_columns(real) if self.categorical is None else self.categorical)
        unknown = [c for c in cats if c not in real.columns]
        if unknown:
            raise DataError(f"categorical column(s) {unknown} are not in the real table")
        self.columns_ = list(real.columns)
        self.cat_columns_ = [c for c in self.columns_ if c in cats]
        self.num_columns_ = [c for c in self.columns_ if c not in cats]
        self.num_stats_: dict[str, tuple[float, float, bool]] = {}
        for col in self.num_columns_:
            values = pd.to_numeric(real[col], errors="coerce").to_numpy(dtype=float)
            _check_finite(values, col, "real")
            observed = values[~np.isnan(values)]
            if observed.size == 0:
                raise DataError(f"column {col!r} has no observed numeric value in the real table")
            med = float(np.median(observed))
            q75, q25 = np.percentile(observed, [75, 25])
            scale = float(q75 - q25)
            if scale <= 1e-12:
                scale = float(observed.std())
            if scale <= 1e-12:
                scale = 1.0
            self.num_stats_[col] = (med, scale, bool(np.isnan(values).any()))
        self.levels_ = {c: sorted(_as_labels(real[c]).unique()) for c in self.cat_columns_}
        self.n_features_ = sum(1 + int(m) for _, _, m in self.num_stats_.values()) + sum(
            len(v) for v in self.levels_.values()
        )
        return self

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """Encode ``df`` (which must hold every fitted column) as a float64 matrix."""
        check_same_columns(pd.DataFrame(columns=self.columns_, index=[0]), df, "given")
        blocks = []
        for col in self.num_columns_:
            med, scale, has_missing = self.num_stats_[col]
            try:
                values = pd.to_numeric(df[col], errors="raise").to_numpy(dtype=float)
            except (ValueError, TypeError) as exc:
                raise DataError(
                    f"column {col!r} is numeric in the real table but holds non-numeric values"
                ) from exc
            _check_finite(values, col, "given")
            miss = np.isnan(values)
            blocks.append(((np.where(miss, med, values) - med) / scale)[:, None])
            if has_missing:
                blocks.append(miss.astype(float)[:, None])
        for col in self.cat_columns_:
            labels = _as_labels(df[col]).to_numpy()
            levels = np.asarray(self.levels_[col], dtype=object)
            blocks.append((labels[:, None] == levels[None, :]).astype(float))
        if not blocks:
            return np.zeros((len(df), 0))
        return np.hstack(blocks)


def _check_finite(values: np.ndarray, col, which: str) -> None:
    bad = np.isinf(values) | (np.abs(np.nan_to_num(values)) > MAX_ABS_VALUE)
    if bad.any():
        raise DataError(
            f"column {col!r} of the {which} table has {int(bad.sum())} infinite or huge value(s) "
            f"such as {float(values[bad][0])!r}; replace them with finite values or blank them"
        )


def _as_labels(s: pd.Series) -> pd.Series:
    """Categorical labels as strings, missing as its own level (so 1 and 1.0 and "1" agree)."""
    out = s.astype(object).where(s.notna(), _MISSING)
    return out.map(_label)


def _label(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    return str(v)
