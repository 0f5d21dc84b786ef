"""Column kinds of a table: inference rules and a JSON-safe schema.

Rules of :func:`infer_schema` (an override always wins):

* bool dtype, or exactly 2 distinct non-missing values -> ``binary``;
* object / string / category dtype -> ``categorical`` (a warning above ``max_categories`` levels);
* integer dtype, or floats whose non-missing values are all integral -> ``integer``, unless it has at
  most :data:`MAX_INTEGER_LEVELS_AS_CATEGORICAL` (5) distinct values -> ``categorical``;
* other floats -> ``continuous`` with ``decimals`` = max decimals observed (capped at 8).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from equisynth.exceptions import SchemaError

__all__ = ["ColumnKind", "ColumnSpec", "TableSchema", "infer_schema"]

ColumnKind = Literal["continuous", "integer", "binary", "categorical"]
KINDS = ("continuous", "integer", "binary", "categorical")
MAX_DECIMALS = 8
MAX_INTEGER_LEVELS_AS_CATEGORICAL = 5
#: Largest magnitude of a numeric value: beyond it, quantile tables and squared distances
#: (SMOTE's nearest neighbours) overflow float64.
MAX_ABS_VALUE = 1e150


def _sort_key(v: Any) -> tuple:
    """A stable key for mixed-type labels: numbers first (by value), then by type name and str."""
    if isinstance(v, (bool, np.bool_)):
        return (0, float(v), "")
    if isinstance(v, (int, float, np.integer, np.floating)):
        return (0, float(v), "")
    return (1, 0.0, f"{type(v).__name__}:{v}")


def _to_python(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


@dataclass(frozen=True)
class ColumnSpec:
    """What equisynth knows about one column.

    Examples
    --------
    >>> ColumnSpec("age", "integer", "int64", False, 0, 18.0, 90.0, None).kind
    'integer'
    """

    name: str
    kind: ColumnKind
    dtype: str
    has_missing: bool
    decimals: int | None
    minimum: float | None
    maximum: float | None
    categories: tuple | None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "has_missing": self.has_missing,
            "decimals": self.decimals,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "categories": None if self.categories is None else list(self.categories),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> ColumnSpec:
        cats = d.get("categories")
        return cls(
            name=d["name"],
            kind=d["kind"],
            dtype=d["dtype"],
            has_missing=bool(d["has_missing"]),
            decimals=d.get("decimals"),
            minimum=d.get("minimum"),
            maximum=d.get("maximum"),
            categories=None if cats is None else tuple(cats),
        )


@dataclass(frozen=True)
class TableSchema:
    """Ordered column specs of a table.

    Examples
    --------
    >>> s = infer_schema(pd.DataFrame({"a": [1.5, 2.25, 3.0], "g": ["x", "y", "x"]}))
    >>> s["a"].kind, s["a"].decimals, s["g"].kind
    ('continuous', 2, 'binary')
    >>> TableSchema.from_dict(s.to_dict()) == s
    True
    """

    columns: tuple[ColumnSpec, ...]

    def __getitem__(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise SchemaError(f"column {name!r} is not in the schema; columns are {self.names}")

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.columns)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def to_dict(self) -> dict:
        return {"columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, d: Mapping) -> TableSchema:
        return cls(tuple(ColumnSpec.from_dict(c) for c in d["columns"]))


def _decimals(values: np.ndarray) -> int:
    v = values[np.isfinite(values)]
    for d in range(MAX_DECIMALS + 1):
        if np.all(np.abs(np.round(v, d) - v) <= 1e-9 * np.maximum(1.0, np.abs(v))):
            return d
    return MAX_DECIMALS


def _numeric_values(col: pd.Series, name: str, kind: str) -> np.ndarray:
    nonmissing = col.dropna()
    if pd.api.types.is_bool_dtype(col.dtype):
        return nonmissing.astype(float).to_numpy()
    conv = pd.to_numeric(nonmissing, errors="coerce")
    bad = nonmissing[conv.isna()]
    if len(bad):
        raise SchemaError(
            f"column {name!r} is declared {kind!r} but contains non-numeric values "
            f"such as {bad.iloc[0]!r} ({len(bad)} rows)"
        )
    return conv.to_numpy(dtype=float)


def _check_finite(values: np.ndarray, name: str) -> None:
    """Infinite or astronomically large numbers cannot be encoded (quantiles overflow)."""
    bad = ~np.isfinite(values) | (np.abs(values) > MAX_ABS_VALUE)
    if bad.any():
        raise SchemaError(
            f"column {name!r} has {int(bad.sum())} infinite or huge value(s) such as "
            f"{float(values[bad][0])!r} (equisynth encodes finite numbers up to {MAX_ABS_VALUE:g} in "
            "absolute value); replace them, or blank them to make them missing"
        )


def _infer_column(col: pd.Series, name: str, override: str | None, max_categories: int):
    nonmissing = col.dropna()
    if len(nonmissing) == 0:
        raise SchemaError(f"column {name!r} has only missing values; drop it or fill it")
    dtype = col.dtype
    is_text = not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))
    n_unique = int(nonmissing.nunique())
    kind = override
    values = None
    if kind is None:
        if pd.api.types.is_bool_dtype(dtype) or n_unique == 2:
            kind = "binary"
        elif is_text:
            kind = "categorical"
        else:
            values = nonmissing.to_numpy(dtype=float)
            if np.all(np.isfinite(values)) and np.all(values == np.round(values)):
                kind = "integer" if n_unique > MAX_INTEGER_LEVELS_AS_CATEGORICAL else "categorical"
            else:
                kind = "continuous"
    has_missing = bool(col.isna().any())
    if kind in ("continuous", "integer"):
        values = _numeric_values(col, name, kind)
        if kind == "integer" and not np.all(values == np.round(values)):
            bad = values[values != np.round(values)][0]
            raise SchemaError(
                f"column {name!r} is declared 'integer' but contains non-integral values "
                f"such as {bad!r}"
            )
        _check_finite(values, name)
        dec = 0 if kind == "integer" else _decimals(values)
        return ColumnSpec(
            name, kind, str(dtype), has_missing, dec, float(values.min()), float(values.max()), None
        )
    cats = tuple(sorted((_to_python(v) for v in nonmissing.unique()), key=_sort_key))
    if kind == "binary" and len(cats) > 2:
        raise SchemaError(f"column {name!r} is declared 'binary' but has {len(cats)} levels")
    if kind == "categorical" and len(cats) > max_categories:
        warnings.warn(
            f"column {name!r} has {len(cats)} categories (> max_categories={max_categories}); "
            "it is treated as categorical, consider grouping rare levels",
            UserWarning,
            stacklevel=3,
        )
    return ColumnSpec(name, kind, str(dtype), has_missing, None, None, None, cats)


def infer_schema(
    df: pd.DataFrame,
    overrides: Mapping[str, ColumnKind] | None = None,
    *,
    max_categories: int = 50,
) -> TableSchema:
    """Infer the kind, dtype, range and levels of each column of ``df``.

    Parameters
    ----------
    df : DataFrame
        The table (at least one row and one column, unique column names).
    overrides : dict, optional
        ``{column: kind}`` forcing a kind (one of continuous, integer, binary, categorical).
    max_categories : int, default=50
        Above this many levels a categorical column gives a ``UserWarning``.

    Returns
    -------
    TableSchema

    Examples
    --------
    >>> df = pd.DataFrame({"age": [30, 41, 52, 63, 74, 85], "sex": ["F", "M"] * 3})
    >>> [c.kind for c in infer_schema(df).columns]
    ['integer', 'binary']
    """
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise SchemaError(f"the table is empty: expected rows and columns, got shape {df.shape}")
    dup = df.columns[df.columns.duplicated()].tolist()
    if dup:
        raise SchemaError(f"duplicated column names: {dup}")
    not_text = [c for c in df.columns if not isinstance(c, str)]
    if not_text:
        raise SchemaError(
            f"column names must be text, got {not_text[0]!r} ({type(not_text[0]).__name__}); "
            "rename the columns, e.g. df.columns = df.columns.astype(str)"
        )
    overrides = dict(overrides or {})
    for name, kind in overrides.items():
        if name not in df.columns:
            raise SchemaError(
                f"override names column {name!r}, which is not in the table; "
                f"columns are {list(df.columns)}"
            )
        if kind not in KINDS:
            raise SchemaError(
                f"override for column {name!r} has unknown kind {kind!r}; expected one of {KINDS}"
            )
    return TableSchema(
        tuple(
            _infer_column(df[name], str(name), overrides.get(name), max_categories)
            for name in df.columns
        )
    )
