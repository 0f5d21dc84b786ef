"""Validation and repair of the three tables of a :class:`~equisynth.data.cohort.Cohort`.

Each problem either raises a one-line :class:`DataError` (what, how many, an example id, the
fix) or, in repair mode, is repaired and logged at INFO on the ``equisynth.data.cohort`` logger.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from equisynth.exceptions import DataError

logger = logging.getLogger("equisynth.data.cohort")

_REQUIRED = {
    "static": ("patient_id",),
    "visits": ("patient_id", "visit_id", "time"),
    "codes": ("visit_id", "vocabulary", "code"),
}


class Checker:
    """Raises (``"raise"``) or logs a repair (``"repair"``) for each problem found."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.repairs: list[str] = []

    def problem(self, what: str, n: int, example: Any, fix: str, repair: str) -> None:
        if n == 0:
            return
        if self.mode == "raise":
            raise DataError(
                f"{what}: {n} (e.g. {example!r}); {fix}, or pass validate='repair' to {repair}"
            )
        text = f"{what}: {n} (e.g. {example!r}) -> {repair}"
        self.repairs.append(text)
        logger.info("Cohort repair: %s", text)


def _frame(obj: Any, name: str) -> pd.DataFrame:
    if not isinstance(obj, pd.DataFrame):
        raise DataError(f"Cohort {name} must be a pandas DataFrame, got {type(obj).__name__}")
    missing = [c for c in _REQUIRED[name] if c not in obj.columns]
    if missing:
        raise DataError(
            f"Cohort {name} table lacks column(s) {missing} (has {list(obj.columns)[:12]}); "
            f"rename the columns to {list(_REQUIRED[name])}"
        )
    if obj.columns.duplicated().any():
        dup = obj.columns[obj.columns.duplicated()].tolist()
        raise DataError(f"Cohort {name} table has duplicate column names {dup}; rename them")
    return obj.reset_index(drop=True).copy()


def _as_text(s: pd.Series) -> pd.Series:
    """Strings for ids and codes: integers without ``.0``, stripped text, missing/blank as NaN."""
    if pd.api.types.is_float_dtype(s):
        finite = s.dropna()
        if np.isfinite(finite).all() and (finite == np.round(finite)).all():
            s = s.astype("Int64")
    missing = s.isna()
    text = s.astype(str).str.strip()
    return text.where(~missing & (text != ""), np.nan).astype(object)


def is_text(s: pd.Series) -> bool:
    return (
        pd.api.types.is_object_dtype(s)
        or pd.api.types.is_string_dtype(s)
        or isinstance(s.dtype, pd.CategoricalDtype)
    )


def _as_time(s: pd.Series, name: str, check: Checker) -> pd.Series:
    """datetime64[ns] (tz-aware converted to naive UTC) or float64; unparsable values NaT/NaN."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.astype("datetime64[ns]")
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.astype("float64")
    if s.isna().all():
        return pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    if check.mode == "raise":
        raise DataError(
            f"{name} has dtype {s.dtype}; expected datetime64 or numeric times; convert it "
            "with pd.to_datetime, or pass validate='repair' to parse it (unparsable values "
            "are dropped)"
        )
    check.problem(
        f"{name} given as text",
        int(s.notna().sum()),
        _example(s.dropna()),
        "convert it with pd.to_datetime",
        "parse it as dates",
    )
    parsed = pd.to_datetime(s, errors="coerce", utc=True, format="mixed")
    bad = parsed.isna() & s.notna()
    check.problem(
        f"{name} values that are not dates",
        int(bad.sum()),
        s[bad].iloc[0] if bad.any() else None,
        "fix those values",
        "treat them as missing",
    )
    return parsed.dt.tz_localize(None).astype("datetime64[ns]")


def _example(values: pd.Series) -> Any:
    return values.iloc[0] if len(values) else None


def _dedupe(df: pd.DataFrame, name: str, check: Checker) -> pd.DataFrame:
    try:
        dup = df.duplicated()
    except TypeError:  # unhashable cells (lists, dicts)
        dup = df.astype(str).duplicated()
    check.problem(
        f"exact duplicate rows in {name}",
        int(dup.sum()),
        _example(df.loc[dup, df.columns[0]]),
        "drop them (df.drop_duplicates())",
        "drop the duplicates",
    )
    return df.loc[~dup]


def _check_static(static: pd.DataFrame, check: Checker) -> pd.DataFrame:
    static["patient_id"] = _as_text(static["patient_id"])
    miss = pd.isna(static["patient_id"])
    check.problem(
        "static rows without patient_id",
        int(miss.sum()),
        _example(static.index[miss].to_series()),
        "give every patient an id",
        "drop those rows",
    )
    static = _dedupe(static.loc[~miss], "static", check)
    dup = static["patient_id"].duplicated(keep=False)
    if dup.any():
        raise DataError(
            f"static has conflicting rows for the same patient_id: {int(dup.sum())} rows "
            f"(e.g. {static.loc[dup, 'patient_id'].iloc[0]!r}); keep one row per patient"
        )
    return static.reset_index(drop=True)


def _fill_demographics(static: pd.DataFrame, check: Checker) -> pd.DataFrame:
    for col in static.columns.drop("patient_id"):
        s = static[col]
        if not is_text(s):
            continue  # numeric/datetime/bool: missing values are legitimate (e.g. death_date)
        miss = s.isna() | (s.astype(str).str.strip() == "")
        check.problem(
            f"missing demographics in static column {col!r}",
            int(miss.sum()),
            _example(static.loc[miss, "patient_id"]),
            "fill them (e.g. 'unknown')",
            "fill them with 'unknown'",
        )
        if miss.any():
            if isinstance(s.dtype, pd.CategoricalDtype):
                if "unknown" not in s.cat.categories:
                    s = s.cat.add_categories(["unknown"])
                s = s.where(~miss, "unknown")
            else:
                s = s.astype(object).where(~miss, "unknown")
            static[col] = s
    return static


def _check_visits(visits: pd.DataFrame, known: set[str], check: Checker) -> pd.DataFrame:
    for col in ("patient_id", "visit_id"):
        visits[col] = _as_text(visits[col])
    miss = pd.isna(visits["patient_id"]) | pd.isna(visits["visit_id"])
    check.problem(
        "visits without patient_id or visit_id",
        int(miss.sum()),
        _example(visits.loc[miss, "visit_id"].fillna("(missing)")),
        "give every visit both ids",
        "drop those visits",
    )
    visits = _dedupe(visits.loc[~miss], "visits", check)
    dup = visits["visit_id"].duplicated(keep=False)
    if dup.any():
        raise DataError(
            f"visits has conflicting rows for the same visit_id: {int(dup.sum())} rows "
            f"(e.g. {visits.loc[dup, 'visit_id'].iloc[0]!r}); keep one row per visit or give "
            "distinct visits distinct ids"
        )
    unknown = ~visits["patient_id"].isin(known)
    check.problem(
        "visits of patients not in static",
        int(unknown.sum()),
        _example(visits.loc[unknown, "patient_id"]),
        "add those patients to static",
        "drop those visits",
    )
    visits = visits.loc[~unknown].copy()
    visits["time"] = _as_time(visits["time"], "visits.time", check)
    miss = visits["time"].isna()
    check.problem(
        "visits without a time",
        int(miss.sum()),
        _example(visits.loc[miss, "visit_id"]),
        "give every visit a time",
        "drop those visits",
    )
    visits = visits.loc[~miss].copy()
    if "end_time" in visits.columns:
        end = _as_time(visits["end_time"], "visits.end_time", check)
        if pd.api.types.is_datetime64_any_dtype(end) != pd.api.types.is_datetime64_any_dtype(
            visits["time"]
        ):
            raise DataError(
                f"visits.end_time ({end.dtype}) and visits.time ({visits['time'].dtype}) must "
                "both be datetimes or both numbers"
            )
        before = end < visits["time"]
        check.problem(
            "visits that end before they start (end_time < time)",
            int(before.sum()),
            _example(visits.loc[before, "visit_id"]),
            "fix their times",
            "set their end_time to missing",
        )
        visits["end_time"] = end.where(~before)
    if "died" in visits.columns:
        died = visits["died"]
        ok = died.isna() | died.isin([0, 1, True, False])
        if not ok.all():
            raise DataError(
                f"visits.died must be 0/1 or boolean, got {died[~ok].iloc[0]!r} (visit "
                f"{visits.loc[~ok, 'visit_id'].iloc[0]!r}); map it to True/False"
            )
        check.problem(
            "visits with a missing 'died' flag",
            int(died.isna().sum()),
            _example(visits.loc[died.isna(), "visit_id"]),
            "fill the flag",
            "set it to False",
        )
        visits["died"] = died.isin([1, True]).to_numpy()
    # time order within each patient, as given
    prev = visits.groupby("patient_id", sort=False)["time"].shift()
    unordered = visits["time"] < prev
    check.problem(
        "visits out of time order within a patient",
        int(unordered.sum()),
        _example(visits.loc[unordered, "patient_id"]),
        "sort visits by patient_id and time",
        "sort them by time",
    )
    return visits


def _check_codes(codes: pd.DataFrame, visits: pd.DataFrame, check: Checker) -> pd.DataFrame:
    for col in ("visit_id", "vocabulary", "code"):
        codes[col] = _as_text(codes[col])
    empty = pd.isna(codes["code"]) | pd.isna(codes["vocabulary"])
    check.problem(
        "empty or missing codes (or vocabularies)",
        int(empty.sum()),
        _example(codes.loc[empty, "visit_id"]),
        "drop or fill those rows",
        "drop those code rows",
    )
    codes = codes.loc[~empty]
    bad_vocab = codes["vocabulary"].str.contains(r"[:\s]", regex=True)
    if bad_vocab.any():
        raise DataError(
            f"vocabulary names must not contain ':' or whitespace, got "
            f"{codes.loc[bad_vocab, 'vocabulary'].iloc[0]!r}; rename it (e.g. 'icd9_dx')"
        )
    codes = _dedupe(codes, "codes", check)
    unknown = ~codes["visit_id"].isin(visits["visit_id"])
    check.problem(
        "codes of visits not in the visits table",
        int(unknown.sum()),
        _example(codes.loc[unknown, "visit_id"]),
        "add those visits or drop the codes",
        "drop those code rows",
    )
    codes = codes.loc[~unknown].copy()
    if "time" in codes.columns:
        t = _as_time(codes["time"], "codes.time", check)
        visit_dt = pd.api.types.is_datetime64_any_dtype(visits["time"])
        if t.isna().all():
            t = t.astype("datetime64[ns]" if visit_dt else "float64")
        elif pd.api.types.is_datetime64_any_dtype(t) != visit_dt:
            raise DataError(
                f"codes.time ({t.dtype}) and visits.time ({visits['time'].dtype}) must both be "
                "datetimes or both numbers"
            )
        codes["time"] = t
    return codes


def validate_tables(static, visits, codes, mode: str):
    check = Checker(mode)
    static = _check_static(_frame(static, "static"), check)
    visits = _check_visits(_frame(visits, "visits"), set(static["patient_id"]), check)
    codes = _check_codes(_frame(codes, "codes"), visits, check)
    has_visit = static["patient_id"].isin(visits["patient_id"])
    check.problem(
        "patients without visits",
        int((~has_visit).sum()),
        _example(static.loc[~has_visit, "patient_id"]),
        "drop them or add their visits",
        "drop those patients",
    )
    static = static.loc[has_visit].reset_index(drop=True)
    if len(static) == 0:
        raise DataError("the cohort has no patient with a visit; check the input tables")
    static = _fill_demographics(static, check)
    # canonical order: patients as in static, visits by time (stable), codes by visit
    order = pd.Series(np.arange(len(static)), index=static["patient_id"].to_numpy())
    visits = visits.assign(_p=visits["patient_id"].map(order).to_numpy())
    visits = visits.sort_values(["_p", "time"], kind="stable").drop(columns="_p")
    visits = visits.reset_index(drop=True)
    vorder = pd.Series(np.arange(len(visits)), index=visits["visit_id"].to_numpy())
    codes = codes.assign(_v=codes["visit_id"].map(vorder).to_numpy())
    codes = codes.sort_values(["_v", "vocabulary", "code"], kind="stable").drop(columns="_v")
    return static, visits, codes.reset_index(drop=True), check.repairs
