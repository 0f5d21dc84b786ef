"""Schema, strata and encoders of a Parquet file read in batches (memory bounded in rows).

One pass over the file (:func:`scan_parquet`) gathers, per column, the statistics that
:func:`~equisynth.data.schema.infer_schema`, :class:`~equisynth.data.strata.StrataIndex` and
:class:`~equisynth.data.encoding.TabularEncoder` need:

* dtype (unified over batches as a full read would give it: an integer column with missing
  values in some batch is ``float64``), missing values, range, decimals, integrality;
* distinct levels: all of them for text, condition and categorical-override columns, up to
  six for numeric columns (more than five distinct values already decides the kind);
* category counts of the condition columns (the strata counts);
* a uniform reservoir sample of ``sample_rows`` non-missing values of every numeric column
  ("bottom-k" sampling with random keys), from which the quantile transform is fitted; when a
  column has at most ``sample_rows`` values the sample is the column itself and the fitted
  quantiles are exactly those of an in-memory fit.

Memory: one batch of ``batch_rows`` rows, the reservoirs and the level sets.
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from equisynth.data.encoding import TabularEncoder
from equisynth.data.schema import (
    KINDS,
    MAX_INTEGER_LEVELS_AS_CATEGORICAL,
    ColumnSpec,
    TableSchema,
    _decimals,
    _sort_key,
    _to_python,
)
from equisynth.data.strata import StrataIndex
from equisynth.exceptions import ConfigError, InputFileError, SchemaError, StrataError

__all__ = ["ParquetScan", "copy_with_seed", "iter_parquet", "open_parquet", "scan_parquet"]

#: A text column with more distinct values than this is refused (an identifier, most likely).
MAX_STREAM_LEVELS = 100_000
_FEW = MAX_INTEGER_LEVELS_AS_CATEGORICAL + 1  # distinct values tracked for numeric columns


def open_parquet(path: str | Path):
    """``pyarrow.parquet.ParquetFile`` of ``path`` with the errors of :func:`equisynth.io.read_table`."""
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix.lower() != ".parquet":
        raise InputFileError(
            f"'{path}' is not a .parquet file; streaming reads Parquet (convert CSV once with "
            "pandas: pd.read_csv(...).to_parquet('table.parquet'))"
        )
    if not path.is_file():
        raise InputFileError(f"input file '{path}' does not exist; check the path")
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own error types on garbage
        detail = " ".join(str(exc).split())[:160]
        raise InputFileError(
            f"cannot read '{path}' as parquet ({type(exc).__name__}: {detail}); "
            "check that the file is a valid Parquet table"
        ) from None


def _to_frame(batch, schema) -> pd.DataFrame:
    import pyarrow as pa

    # through a Table with the file's schema, so that pandas metadata (dtypes, index) applies
    return pa.Table.from_batches([batch], schema=schema).to_pandas().reset_index(drop=True)


def iter_parquet(
    pf, *, batch_rows: int, row_groups: Sequence[int] | None = None
) -> Iterator[pd.DataFrame]:
    """DataFrames of at most ``batch_rows`` rows, in file order (optionally of some row groups)."""
    schema = pf.schema_arrow
    for batch in pf.iter_batches(batch_size=batch_rows, row_groups=row_groups):
        if batch.num_rows:
            yield _to_frame(batch, schema)


@dataclass
class _ColumnStats:
    name: str
    track_all_levels: bool
    numeric: bool  # reservoir-sampled and range-tracked
    dtypes: set = field(default_factory=set)
    n_rows: int = 0
    n_missing: int = 0
    levels: set | None = field(default_factory=set)  # None: more than _FEW (numeric only)
    all_finite: bool = True
    all_integral: bool = True
    minimum: float = np.inf
    maximum: float = -np.inf
    decimals: int = 0
    sample: np.ndarray = field(default_factory=lambda: np.empty(0))
    keys: np.ndarray = field(default_factory=lambda: np.empty(0))


def _unify_dtype(dtypes: set) -> Any:
    if len(dtypes) == 1:
        return next(iter(dtypes))
    if all(pd.api.types.is_numeric_dtype(d) and not pd.api.types.is_bool_dtype(d) for d in dtypes):
        return np.dtype("float64")  # an integer column with missing values in some batches
    return np.dtype("O")


def _is_text(dtype) -> bool:
    return not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


@dataclass
class ParquetScan:
    """What one pass over a Parquet file learned (see :func:`scan_parquet`).

    Attributes
    ----------
    schema : TableSchema
        Equal to ``infer_schema(pd.read_parquet(path), overrides)``.
    strata : StrataIndex or None
        Fitted on the condition columns (``None`` without them).
    stratum_counts : list of int
        Rows per stratum id.
    samples : dict of str to ndarray
        Reservoir sample of the non-missing values of each numeric column.
    n_rows : int
    row_group_rows : list of int
        Rows of each row group of the file.
    """

    schema: TableSchema
    strata: StrataIndex | None
    stratum_counts: list[int]
    samples: dict[str, np.ndarray]
    n_rows: int
    row_group_rows: list[int]

    def fit_encoder(
        self, columns: Sequence[str], *, numeric_transform="quantile", random_state=None
    ) -> TabularEncoder:
        """A :class:`TabularEncoder` of ``columns`` fitted on the reservoir samples.

        The encoder only reads the numeric columns' values at fit time (levels come from the
        schema), so fitting it on the samples equals fitting it on the whole table whenever
        the samples hold every value.
        """
        sub = TableSchema(tuple(self.schema[c] for c in columns))
        length = max([len(self.samples.get(c, ())) for c in columns] + [1])
        data = {}
        for spec in sub.columns:
            if spec.kind in ("continuous", "integer"):
                v = np.full(length, np.nan)
                s = self.samples[spec.name]
                v[: len(s)] = s
                data[spec.name] = v
            else:  # unused by fit: any level will do
                data[spec.name] = pd.Series([spec.categories[0]] * length, dtype=object)
        return TabularEncoder(numeric_transform=numeric_transform, random_state=random_state).fit(
            pd.DataFrame(data), sub
        )


def _reservoir(stats: _ColumnStats, values: np.ndarray, size: int, rng) -> None:
    """Bottom-k sampling: keep the ``size`` values with the smallest uniform random keys."""
    keys = rng.random(len(values))
    all_v = np.concatenate([stats.sample, values])
    all_k = np.concatenate([stats.keys, keys])
    if len(all_v) > size:
        keep = np.argpartition(all_k, size - 1)[:size]
        all_v, all_k = all_v[keep], all_k[keep]
    stats.sample, stats.keys = all_v, all_k


def _numeric(col: pd.Series, name: str, kind: str | None) -> np.ndarray:
    """Non-missing values as floats (text under a numeric override is an error, as in fit)."""
    nonmissing = col.dropna()
    if pd.api.types.is_bool_dtype(col.dtype):
        return nonmissing.astype(float).to_numpy()
    conv = pd.to_numeric(nonmissing, errors="coerce")
    bad = nonmissing[conv.isna()]
    if len(bad):
        raise SchemaError(
            f"column {name!r} is declared {kind!r} but contains non-numeric values "
            f"such as {bad.iloc[0]!r} ({len(bad)} rows in one batch)"
        )
    return conv.to_numpy(dtype=float)


def _update(stats: _ColumnStats, col: pd.Series, override, sample_rows: int, rng) -> None:
    stats.dtypes.add(col.dtype)
    stats.n_rows += len(col)
    missing = col.isna()
    stats.n_missing += int(missing.sum())
    nonmissing = col[~missing]
    if stats.levels is not None and len(nonmissing):
        stats.levels.update(_to_python(v) for v in pd.unique(nonmissing))
        if not stats.track_all_levels and len(stats.levels) > _FEW:
            stats.levels = None
        elif len(stats.levels) > MAX_STREAM_LEVELS:
            raise SchemaError(
                f"column {stats.name!r} has more than {MAX_STREAM_LEVELS} distinct values; "
                "drop it (an identifier?) or declare it numeric"
            )
    if not stats.numeric or not len(nonmissing):
        return
    values = _numeric(col, stats.name, override)
    finite = np.isfinite(values)
    stats.all_finite &= bool(finite.all())
    stats.all_integral &= bool(np.all(values == np.round(values)))
    if len(values):
        stats.minimum = min(stats.minimum, float(values.min()))
        stats.maximum = max(stats.maximum, float(values.max()))
        stats.decimals = max(stats.decimals, _decimals(values))
        _reservoir(stats, values, sample_rows, rng)


def _finish_column(stats: _ColumnStats, override, max_categories: int) -> ColumnSpec:
    name = stats.name
    if stats.n_missing == stats.n_rows:
        raise SchemaError(f"column {name!r} has only missing values; drop it or fill it")
    dtype = _unify_dtype(stats.dtypes)
    levels = None
    if stats.levels is not None:
        levels = stats.levels
        if dtype.kind in "fiu":  # the levels as a full read would give them
            levels = {_to_python(v) for v in np.asarray(list(levels)).astype(dtype)}
    n_unique = len(levels) if levels is not None else _FEW
    kind = override
    if kind is None:
        if pd.api.types.is_bool_dtype(dtype) or n_unique == 2:
            kind = "binary"
        elif _is_text(dtype):
            kind = "categorical"
        elif stats.all_finite and stats.all_integral:
            kind = "integer" if n_unique > MAX_INTEGER_LEVELS_AS_CATEGORICAL else "categorical"
        else:
            kind = "continuous"
    has_missing = stats.n_missing > 0
    if kind in ("continuous", "integer"):
        if kind == "integer" and not stats.all_integral:
            raise SchemaError(
                f"column {name!r} is declared 'integer' but contains non-integral values"
            )
        dec = 0 if kind == "integer" else stats.decimals
        return ColumnSpec(
            name, kind, str(dtype), has_missing, dec, stats.minimum, stats.maximum, None
        )
    cats = tuple(sorted(levels, key=_sort_key))
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


def scan_parquet(
    path: str | Path,
    *,
    condition_on: Sequence[str] = (),
    overrides: Mapping[str, str] | None = None,
    batch_rows: int = 65_536,
    sample_rows: int = 100_000,
    random_state=None,
    max_categories: int = 50,
) -> ParquetScan:
    """One pass over a Parquet file: schema, strata counts and reservoir samples.

    Parameters
    ----------
    path : str or Path
        A ``.parquet`` file.
    condition_on : sequence of str
        Condition columns (all their levels are kept; missing values are an error).
    overrides : dict, optional
        Explicit column kinds, as in :func:`~equisynth.data.schema.infer_schema`.
    batch_rows : int, default=65536
        Rows read at a time.
    sample_rows : int, default=100000
        Reservoir size per numeric column.
    random_state : None, int or Generator
        Randomness of the reservoir.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.parquet")
    >>> df = pd.DataFrame({"x": [0.5, 1.25, 2.0, 8.0, 3.5, 1.0], "g": list("abcabc")})
    >>> df.to_parquet(p)
    >>> scan = scan_parquet(p, condition_on=["g"], batch_rows=4)
    >>> scan.n_rows, scan.stratum_counts, scan.schema["x"].kind
    (6, [2, 2, 2], 'continuous')
    """
    import pyarrow as pa

    from equisynth._utils import as_numpy_rng

    for name, value in (("batch_rows", batch_rows), ("sample_rows", sample_rows)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    pf = open_parquet(path)
    columns = list(pf.schema_arrow.names)
    meta = pf.schema_arrow.pandas_metadata or {}
    index_cols = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
    columns = [c for c in columns if c not in index_cols]
    condition_on = list(condition_on)
    absent = [c for c in condition_on if c not in columns]
    if absent:
        raise StrataError(
            f"condition column(s) {absent} not in '{path}'; available columns: {columns}"
        )
    overrides = dict(overrides or {})
    for name, kind in overrides.items():
        if name not in columns:
            raise SchemaError(
                f"override names column {name!r}, which is not in the table; columns are {columns}"
            )
        if kind not in KINDS:
            raise SchemaError(
                f"override for column {name!r} has unknown kind {kind!r}; expected one of {KINDS}"
            )
    rng = as_numpy_rng(random_state)
    stats: dict[str, _ColumnStats] = {}
    for c in columns:
        ov = overrides.get(c)
        arrow_type = pf.schema_arrow.field(c).type
        is_number = pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
        stats[c] = _ColumnStats(
            name=c,
            # text, booleans and other types keep every level, as categories need them
            track_all_levels=c in condition_on
            or ov in ("binary", "categorical")
            or (ov is None and not is_number),
            numeric=ov in ("continuous", "integer") or (ov is None and is_number),
        )
    strata_counts: Counter = Counter()
    n_rows = 0
    for frame in iter_parquet(pf, batch_rows=int(batch_rows)):
        n_rows += len(frame)
        for c in columns:
            _update(stats[c], frame[c], overrides.get(c), int(sample_rows), rng)
        if condition_on:
            for c in condition_on:
                if frame[c].isna().any():
                    raise StrataError(
                        f"strata column {c!r} has missing (NaN) rows; "
                        "fill or drop them before rebalancing"
                    )
            strata_counts.update(frame.groupby(condition_on, sort=False).size().to_dict())
    if n_rows == 0:
        raise InputFileError(f"input file '{path}' has no data rows")
    specs = tuple(
        _finish_column(stats[c], overrides.get(c), max_categories=max_categories) for c in columns
    )
    schema = TableSchema(specs)
    strata, counts = None, []
    if condition_on:
        strata = StrataIndex.from_state(
            {
                "columns": condition_on,
                "levels": [_levels(stats[c]) for c in condition_on],
                "dtypes": [schema[c].dtype for c in condition_on],
            }
        )
        counts = [0] * strata.n_strata_
        for key, n in strata_counts.items():
            key = key if isinstance(key, tuple) else (key,)
            counts[int(strata.encode_values([key])[0])] += int(n)
    samples = {c: st.sample.copy() for c, st in stats.items() if st.numeric}
    row_groups = [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
    return ParquetScan(schema, strata, counts, samples, n_rows, row_groups)


def _levels(stats: _ColumnStats) -> list:
    dtype = _unify_dtype(stats.dtypes)
    levels = stats.levels or set()
    if dtype.kind in "fiu":
        levels = {_to_python(v) for v in np.asarray(list(levels)).astype(dtype)}
    return sorted(levels, key=_sort_key)


def copy_with_seed(encoder: TabularEncoder, seed: int) -> TabularEncoder:
    """A shallow copy of a fitted encoder with another ``random_state`` (fill values of a chunk)."""
    out = copy.copy(encoder)
    out.random_state = seed
    return out
