"""The conditional-generator protocol shared by every generator, and a tiny test double.

:class:`ConditionalGenerator` is what :class:`equisynth.MCRAGE` needs from a generator:
``fit(df, *, condition_on)`` and ``sample(conditions, *, random_state=None)``.
:class:`EmpiricalGenerator` follows it by resampling real rows; it is a test double and a
sanity baseline, **not** a generative method.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from equisynth._utils import as_numpy_rng
from equisynth.exceptions import DataError, NotFittedError

__all__ = ["ConditionalGenerator", "EmpiricalGenerator"]


@runtime_checkable
class ConditionalGenerator(Protocol):
    """A generator of table rows conditioned on some of the table's columns.

    ``sample`` returns one row per row of ``conditions`` (which holds the ``condition_on``
    columns), with all columns of the fitted table in their order; the condition columns
    are copied from ``conditions``, the others are generated.
    """

    def fit(self, df: pd.DataFrame, *, condition_on: Sequence[str]) -> ConditionalGenerator: ...

    def sample(self, conditions: pd.DataFrame, *, random_state=None) -> pd.DataFrame: ...


class EmpiricalGenerator(BaseEstimator):
    """Test double: draws real rows of the requested stratum, with small Gaussian jitter.

    Not a generative method: it copies real patients (plus ``jitter`` times the column's
    standard deviation of noise on float columns). Use it to test samplers quickly and as
    a sanity baseline.

    Parameters
    ----------
    jitter : float, default=0.01
        Noise scale on float columns, as a fraction of each column's standard deviation.
    random_state : int, Generator or None
        Seed used by ``sample`` when it is called without ``random_state``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "g": ["x", "x", "y", "y"]})
    >>> gen = EmpiricalGenerator(random_state=0).fit(df, condition_on=["g"])
    >>> gen.sample(pd.DataFrame({"g": ["y", "y"]}))["g"].tolist()
    ['y', 'y']
    """

    def __init__(self, *, jitter: float = 0.01, random_state=None):
        self.jitter = jitter
        self.random_state = random_state

    def fit(self, df: pd.DataFrame, *, condition_on: Sequence[str]) -> EmpiricalGenerator:
        """Store the rows of each combination of the ``condition_on`` columns."""
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"EmpiricalGenerator.fit expects a DataFrame, got {type(df).__name__}")
        condition_on = list(condition_on)
        absent = [c for c in condition_on if c not in df.columns]
        if absent:
            raise DataError(
                f"condition_on column(s) {absent} are not in the table; available: {list(df.columns)}"
            )
        self.data_ = df.reset_index(drop=True)
        self.condition_on_ = condition_on
        self.columns_ = list(df.columns)
        self.groups_ = {
            (key if isinstance(key, tuple) else (key,)): idx.to_numpy()
            for key, idx in self.data_.groupby(
                condition_on, dropna=False, sort=False
            ).groups.items()
        }
        floats = [
            c for c in self.columns_ if c not in condition_on and pd.api.types.is_float_dtype(df[c])
        ]
        self.scales_ = {c: float(np.nan_to_num(self.data_[c].std())) for c in floats}
        return self

    def sample(self, conditions: pd.DataFrame, *, random_state=None) -> pd.DataFrame:
        """One row per row of ``conditions``, drawn from the matching stratum with replacement."""
        if not hasattr(self, "data_"):
            raise NotFittedError("this EmpiricalGenerator is not fitted yet; call fit first")
        absent = [c for c in self.condition_on_ if c not in conditions.columns]
        if absent:
            raise DataError(f"conditions lack column(s) {absent}; expected {self.condition_on_}")
        rng = as_numpy_rng(self.random_state if random_state is None else random_state)
        keys = list(conditions[self.condition_on_].itertuples(index=False, name=None))
        positions = np.empty(len(keys), dtype=np.int64)
        for i, key in enumerate(keys):
            rows = self.groups_.get(tuple(key))
            if rows is None:
                raise DataError(
                    f"condition {dict(zip(self.condition_on_, key, strict=True))} was not seen in fit"
                )
            positions[i] = rows[rng.integers(len(rows))]
        out = self.data_.iloc[positions].reset_index(drop=True)
        for col, scale in self.scales_.items():
            noise = rng.normal(0.0, self.jitter * scale, size=len(out))
            out[col] = (out[col].to_numpy() + noise).astype(out[col].dtype)
        for col in self.condition_on_:
            out[col] = conditions[col].to_numpy()
            out[col] = out[col].astype(self.data_[col].dtype)
        return out[self.columns_]
