"""Strata (outcome x sensitive attributes): the bijection phi and the sampling strategies.

phi maps a tuple of levels to a mixed-radix integer over the observed, sorted levels of each
column (first column most significant); ``decode`` is phi^-1.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from equisynth.data.schema import _sort_key, _to_python
from equisynth.exceptions import NotFittedError, StrataError

__all__ = ["StrataIndex", "resolve_sampling_strategy"]


class StrataIndex:
    """phi: (y, s_1..s_L) -> int over observed levels (mixed radix), and phi^-1 back.

    Examples
    --------
    >>> df = pd.DataFrame({"y": [0, 1, 1, 0], "sex": ["F", "F", "M", "M"]})
    >>> idx = StrataIndex(["y", "sex"]).fit(df)
    >>> idx.n_strata_, idx.encode(df).tolist()
    (4, [0, 2, 3, 1])
    >>> idx.decode([3])["sex"].tolist(), idx.decode([3])["y"].tolist()
    (['M'], [1])
    """

    def __init__(self, columns: Sequence[str]):
        self.columns = columns

    def fit(self, df: pd.DataFrame) -> StrataIndex:
        """Learn the sorted observed levels of each strata column."""
        cols = [self.columns] if isinstance(self.columns, str) else list(self.columns)
        if not cols:
            raise StrataError("StrataIndex needs at least one column, got none")
        for c in cols:
            if c not in df.columns:
                raise StrataError(f"strata column {c!r} is not in the table")
            n_nan = int(df[c].isna().sum())
            if n_nan:
                raise StrataError(
                    f"strata column {c!r} has {n_nan} missing (NaN) rows; "
                    "fill or drop them before rebalancing"
                )
        self.columns_ = cols
        self.levels_ = [
            tuple(sorted((_to_python(v) for v in df[c].unique()), key=_sort_key)) for c in cols
        ]
        self.dtypes_ = [str(df[c].dtype) for c in cols]
        self._set_radix()
        return self

    def _set_radix(self) -> None:
        self.cardinalities_ = [len(lv) for lv in self.levels_]
        self.n_strata_ = int(np.prod(self.cardinalities_))
        radix = [1] * len(self.levels_)
        for i in range(len(self.levels_) - 2, -1, -1):
            radix[i] = radix[i + 1] * self.cardinalities_[i + 1]
        self.radix_ = radix
        self._lookup = [{v: i for i, v in enumerate(lv)} for lv in self.levels_]

    def _check_fitted(self) -> None:
        if not hasattr(self, "levels_"):
            raise NotFittedError("this StrataIndex is not fitted; call fit(df) first")

    def encode_values(self, values: Sequence[tuple]) -> np.ndarray:
        """phi of level tuples (one tuple per row, in column order)."""
        self._check_fitted()
        out = np.zeros(len(values), dtype=np.int64)
        for r, tup in enumerate(values):
            if not isinstance(tup, tuple | list):
                tup = (tup,)
            if len(tup) != len(self.columns_):
                raise StrataError(
                    f"expected a tuple of {len(self.columns_)} levels {self.columns_}, got {tup!r}"
                )
            for j, v in enumerate(tup):
                v = _to_python(v)
                if v not in self._lookup[j]:
                    raise StrataError(
                        f"column {self.columns_[j]!r} has the level {v!r}, unseen at fit time; "
                        f"known levels are {list(self.levels_[j])}"
                    )
                out[r] += self._lookup[j][v] * self.radix_[j]
        return out

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """phi of each row of ``df`` (int64 stratum ids)."""
        self._check_fitted()
        for c in self.columns_:
            if c not in df.columns:
                raise StrataError(f"strata column {c!r} is not in the table")
            n_nan = int(df[c].isna().sum())
            if n_nan:
                raise StrataError(f"strata column {c!r} has {n_nan} missing (NaN) rows")
        out = np.zeros(len(df), dtype=np.int64)
        for j, c in enumerate(self.columns_):
            codes = pd.Categorical(df[c].map(_to_python), categories=list(self.levels_[j])).codes
            if (codes < 0).any():
                bad = df[c].to_numpy()[codes < 0][0]
                raise StrataError(
                    f"column {c!r} has the level {bad!r}, unseen at fit time; "
                    f"known levels are {list(self.levels_[j])}"
                )
            out += codes.astype(np.int64) * self.radix_[j]
        return out

    def decode(self, index) -> pd.DataFrame:
        """phi^-1: a DataFrame of levels with the fitted columns' labels and dtypes."""
        self._check_fitted()
        idx = np.asarray(index, dtype=np.int64).reshape(-1)
        if ((idx < 0) | (idx >= self.n_strata_)).any():
            raise StrataError(f"stratum ids must lie in [0, {self.n_strata_}), got {idx.min()}..")
        data = {}
        for j, c in enumerate(self.columns_):
            codes = (idx // self.radix_[j]) % self.cardinalities_[j]
            labels = np.empty(self.cardinalities_[j], dtype=object)
            labels[:] = list(self.levels_[j])
            s = pd.Series(labels[codes], dtype=object)
            try:
                s = s.astype(self.dtypes_[j])
            except (TypeError, ValueError):
                pass
            data[c] = s
        return pd.DataFrame(data)

    def counts(self, df: pd.DataFrame) -> pd.Series:
        """Rows per stratum id, all ``n_strata_`` ids (zeros included)."""
        ids = self.encode(df)
        return pd.Series(
            np.bincount(ids, minlength=self.n_strata_), index=pd.RangeIndex(self.n_strata_)
        ).rename("count")

    def describe(self, df: pd.DataFrame) -> pd.DataFrame:
        """One row per stratum: levels, ``count``, ``share`` and ``observed``."""
        counts = self.counts(df)
        out = self.decode(np.arange(self.n_strata_))
        out["count"] = counts.to_numpy()
        out["share"] = out["count"] / max(int(counts.sum()), 1)
        out["observed"] = out["count"] > 0
        out.index.name = "stratum"
        return out

    def label(self, stratum: int) -> str:
        """A readable name of one stratum id, e.g. ``"SOURCE='in', SEX='F'"``."""
        return ", ".join(
            f"{c}={v!r}" for c, v in zip(self.columns_, self.levels_of(stratum), strict=True)
        )

    def levels_of(self, stratum: int) -> tuple:
        """phi^-1 of one id as a tuple of plain python labels."""
        self._check_fitted()
        return tuple(
            self.levels_[j][(int(stratum) // self.radix_[j]) % self.cardinalities_[j]]
            for j in range(len(self.levels_))
        )

    def get_state(self) -> dict:
        """JSON-safe state (levels must be str/int/float/bool)."""
        self._check_fitted()
        return {
            "columns": list(self.columns_),
            "levels": [list(lv) for lv in self.levels_],
            "dtypes": list(self.dtypes_),
        }

    @classmethod
    def from_state(cls, state: Mapping) -> StrataIndex:
        idx = cls(list(state["columns"]))
        idx.columns_ = list(state["columns"])
        idx.levels_ = [tuple(lv) for lv in state["levels"]]
        idx.dtypes_ = list(state["dtypes"])
        idx._set_radix()
        return idx


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer split of ``total`` proportional to ``weights`` with an exact sum."""
    w = np.asarray(weights, dtype=float)
    raw = total * w / w.sum()
    base = np.floor(raw).astype(np.int64)
    rest = total - int(base.sum())
    order = np.argsort(-(raw - base), kind="stable")
    base[order[:rest]] += 1
    return base


def resolve_sampling_strategy(
    strategy: str | float | Mapping | Callable,
    counts: pd.Series,
    strata: StrataIndex,
    *,
    target: str,
    sensitive: Sequence[str],
    min_rows: int = 10,
) -> dict[int, int]:
    """Number of NEW rows per stratum id (>= 0) for a sampling strategy.

    Parameters
    ----------
    strategy : "auto" | "fill-to-max" | "equalize-groups" | float | dict | callable
        "auto"/"fill-to-max": every observed stratum up to the largest count; "equalize-groups":
        every sensitive group up to the largest group's size keeping its own outcome prevalence;
        float r in (0, 1]: every observed stratum up to ceil(r * largest); dict ``{levels tuple
        (target, *sensitive) or id: target TOTAL count}``; callable(describe frame) -> such a dict.
    counts : Series
        :meth:`StrataIndex.counts` output.
    strata : StrataIndex
        Fitted on the columns ``(target, *sensitive)``.
    min_rows : int, default=10
        Observed strata with fewer rows give a ``UserWarning`` that names them and their
        row counts. Strata with no rows are skipped (they get no new rows) and reported in
        one ``UserWarning``.

    Examples
    --------
    >>> df = pd.DataFrame({"y": [0] * 6 + [1] * 2, "s": ["a"] * 3 + ["b"] * 3 + ["a", "b"]})
    >>> idx = StrataIndex(["y", "s"]).fit(df)
    >>> resolve_sampling_strategy("auto", idx.counts(df), idx, target="y", sensitive=["s"],
    ...                           min_rows=1)
    {0: 0, 1: 0, 2: 2, 3: 2}
    """
    counts = pd.Series(counts).reindex(range(strata.n_strata_), fill_value=0).astype(np.int64)
    observed = counts[counts > 0]
    empty = counts.index[counts == 0].tolist()
    if empty:
        warnings.warn(
            f"{len(empty)} stratum/strata with no rows skipped (nothing to learn from, nothing "
            "added): " + "; ".join(f"({strata.label(s)})" for s in empty),
            UserWarning,
            stacklevel=2,
        )
    if len(observed) <= 1:
        raise StrataError(
            f"a single stratum is observed over {strata.columns_}: nothing to rebalance"
        )
    for sid, n in observed.items():
        if n < min_rows:
            warnings.warn(
                f"stratum ({strata.label(sid)}) has only {int(n)} rows (fewer than "
                f"{min_rows}); synthetic rows for it rest on very few real rows",
                UserWarning,
                stacklevel=2,
            )
    k_max = int(observed.max())
    if callable(strategy) and not isinstance(strategy, str):
        frame = _describe(strata, counts)
        strategy = strategy(frame)
        if not isinstance(strategy, Mapping):
            raise StrataError(
                f"a callable sampling strategy must return a dict, got {type(strategy).__name__}"
            )
    if isinstance(strategy, str):
        if strategy in ("auto", "fill-to-max"):
            return {int(s): int(k_max - n) for s, n in observed.items()}
        if strategy == "equalize-groups":
            return _equalize_groups(counts, strata, target, sensitive)
    elif isinstance(strategy, float | int) and not isinstance(strategy, bool):
        r = float(strategy)
        if not 0 < r <= 1:
            raise StrataError(f"a float sampling strategy must lie in (0, 1], got {r}")
        goal = math.ceil(r * k_max)
        return {int(s): max(int(goal - n), 0) for s, n in observed.items()}
    elif isinstance(strategy, Mapping):
        out = {}
        for key, total in strategy.items():
            sid = (
                int(key)
                if isinstance(key, int | np.integer)
                else int(strata.encode_values([tuple(key)])[0])
            )
            if not 0 <= sid < strata.n_strata_:
                raise StrataError(f"stratum id {sid} is outside [0, {strata.n_strata_})")
            if total < counts[sid]:
                raise StrataError(
                    f"stratum {key!r} asks for {total} rows in total but already has "
                    f"{int(counts[sid])}; give a target total >= the current count"
                )
            if counts[sid] == 0:
                continue
            out[sid] = int(total - counts[sid])
        return out
    raise StrataError(
        "sampling_strategy must be 'auto', 'fill-to-max', 'equalize-groups', a float in (0, 1], "
        f"a dict or a callable, got {strategy!r}"
    )


def _describe(strata: StrataIndex, counts: pd.Series) -> pd.DataFrame:
    out = strata.decode(np.arange(strata.n_strata_))
    out["count"] = counts.to_numpy()
    out["share"] = out["count"] / max(int(counts.sum()), 1)
    out["observed"] = out["count"] > 0
    return out


def _equalize_groups(
    counts: pd.Series, strata: StrataIndex, target: str, sensitive: Sequence[str]
) -> dict[int, int]:
    if list(strata.columns_) != [target, *sensitive]:
        raise StrataError(
            f"'equalize-groups' needs strata over (target, *sensitive) = {[target, *sensitive]}, "
            f"got {strata.columns_}"
        )
    if not sensitive:
        raise StrataError("'equalize-groups' needs at least one sensitive column")
    group_radix = strata.radix_[0]  # target is the most significant digit
    group = counts.index.to_numpy() % group_radix
    sizes = pd.Series(counts.to_numpy()).groupby(group).sum()
    goal = int(sizes.max())
    out: dict[int, int] = {}
    for g, size in sizes.items():
        if size == 0:
            continue
        ids = counts.index.to_numpy()[group == g]
        c = counts.to_numpy()[group == g]
        # final per-stratum totals: goal split by the group's observed outcome shares
        final = _largest_remainder(goal, c)
        final = np.maximum(final, c)
        for sid, n_old, n_new in zip(ids, c, final, strict=True):
            if n_old > 0:
                out[int(sid)] = int(n_new - n_old)
    return out
