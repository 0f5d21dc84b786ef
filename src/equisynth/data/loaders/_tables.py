"""Shared helpers of the loaders: finding and reading source tables, dates, ages."""

from __future__ import annotations

import os
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd

from equisynth.exceptions import ConfigError, DataError, InputFileError

__all__ = [
    "AGE_BINS",
    "age_group",
    "check_directory",
    "find_table",
    "parse_dates",
    "read_columns",
    "years_between",
]

#: Lower edges (years) of the age groups: ``0-17``, ``18-39``, ``40-59``, ``60-79``, ``80+``.
AGE_BINS: tuple[int, ...] = (0, 18, 40, 60, 80)


def check_directory(directory: str | Path, what: str) -> Path:
    directory = Path(directory)
    if not directory.is_dir():
        state = "is not a directory" if directory.exists() else "does not exist"
        raise InputFileError(f"{what} directory '{directory}' {state}; check the path")
    return directory


def find_table(directory: Path, name: str, *, required: bool = True) -> Path | None:
    """``name.csv`` or ``name.csv.gz`` in ``directory``, matching the name case-insensitively."""
    wanted = {f"{name}.csv".lower(), f"{name}.csv.gz".lower()}
    hits = sorted(p for p in directory.iterdir() if p.name.lower() in wanted and p.is_file())
    if len(hits) > 1:
        raise InputFileError(
            f"'{directory}' holds both {hits[0].name} and {hits[1].name}; keep one of them"
        )
    if hits:
        return hits[0]
    if required:
        raise InputFileError(
            f"'{directory}' has no {name}.csv or {name}.csv.gz; check the directory (the "
            "table is required for the requested vocabularies)"
        )
    return None


def read_columns(path: Path, required: Sequence[str], optional: Sequence[str] = ()) -> pd.DataFrame:
    """Columns of a CSV (or .csv.gz) as strings, names matched case-insensitively, upper-cased.

    Every value is read as text (ICD-9 codes keep their leading zeros); empty cells are NaN.
    """
    try:
        if path.stat().st_size == 0:
            raise InputFileError(f"input file '{path}' is empty (0 bytes)")
        if not os.access(path, os.R_OK):
            raise InputFileError(f"input file '{path}' is not readable; fix its permissions")
        header = pd.read_csv(path, nrows=0).columns
        by_upper = {str(c).strip().upper(): c for c in header}
        missing = [c for c in required if c not in by_upper]
        if missing:
            raise DataError(
                f"'{path}' lacks column(s) {missing} (has {list(header)[:15]}); it does not "
                "look like the expected table"
            )
        wanted = [c for c in (*required, *optional) if c in by_upper]
        df = pd.read_csv(
            path, usecols=[by_upper[c] for c in wanted], dtype=str, keep_default_na=True
        )
    except (InputFileError, DataError):
        raise
    except pd.errors.EmptyDataError:
        raise InputFileError(f"input file '{path}' has no columns") from None
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError, EOFError) as exc:
        detail = " ".join(str(exc).split())[:160]
        raise InputFileError(
            f"cannot read '{path}' as CSV ({type(exc).__name__}: {detail}); check that it is a "
            "valid, UTF-8 encoded (optionally gzipped) CSV file"
        ) from None
    df.columns = [str(c).strip().upper() for c in df.columns]
    return df


def parse_dates(s: pd.Series) -> pd.Series:
    """ISO-8601 text to naive datetime64[ns] (time zones converted to UTC); bad values NaT."""
    if pd.api.types.is_datetime64_any_dtype(s) and not isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.astype("datetime64[ns]")
    try:
        out = pd.to_datetime(s, errors="coerce", utc=True, format="ISO8601")
    except (ValueError, TypeError):
        out = pd.to_datetime(s, errors="coerce", utc=True, format="mixed")
    return out.dt.tz_localize(None).astype("datetime64[ns]")


def years_between(start: pd.Series, end: pd.Series) -> pd.Series:
    """Whole years from ``start`` to ``end`` by calendar (no timedelta overflow past 292 years)."""
    years = end.dt.year - start.dt.year
    before = (end.dt.month < start.dt.month) | (
        (end.dt.month == start.dt.month) & (end.dt.day < start.dt.day)
    )
    return (years - before.astype(float)).astype(float)


def age_group(age: pd.Series, bins: Sequence[int] = AGE_BINS) -> pd.Series:
    """Age (years) to a label such as ``"18-39"`` or ``"80+"``; missing or negative: ``"unknown"``.

    Examples
    --------
    >>> age_group(pd.Series([5.0, 39.9, 40.0, 95.0, None])).tolist()
    ['0-17', '18-39', '40-59', '80+', 'unknown']
    """
    edges = [int(b) for b in bins]
    if len(edges) < 1 or edges != sorted(set(edges)) or edges[0] < 0:
        raise ConfigError(f"age_bins must be increasing non-negative integers, got {list(bins)}")
    labels = [f"{lo}-{hi - 1}" for lo, hi in pairwise(edges)]
    labels.append(f"{edges[-1]}+")
    a = pd.to_numeric(age, errors="coerce").to_numpy(dtype=float)
    idx = np.searchsorted(np.asarray(edges, dtype=float), a, side="right") - 1
    ok = np.isfinite(a) & (idx >= 0)
    out = np.where(ok, np.asarray(labels, dtype=object)[np.clip(idx, 0, None)], "unknown")
    return pd.Series(out, index=age.index, dtype=object)
