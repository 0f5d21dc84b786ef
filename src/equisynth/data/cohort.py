"""The longitudinal cohort: patients (static table), ordered visits, and the codes of each visit.

A :class:`Cohort` holds three tidy tables:

- ``static``: one row per patient, ``patient_id`` (str) plus demographics and labels;
- ``visits``: one row per visit, ``patient_id``, ``visit_id`` (str) and ``time`` (datetime64 or
  float), plus optional columns (``end_time``, ``died``, ...), sorted by patient (in the order
  of ``static``) then time;
- ``codes``: one row per code of a visit, ``visit_id``, ``vocabulary`` and ``code`` (str), plus an
  optional ``time`` (when the code was recorded, if known).

A code's token is ``"vocabulary:code"`` (e.g. ``"diagnoses:4019"``); the :attr:`Cohort.patients`
view gives each visit's tokens as a ``frozenset``, which is what the longitudinal quality
metrics read. The tables are checked on construction; bad input is either refused with a
one-line :class:`~equisynth.exceptions.DataError` (``validate="raise"``) or repaired, with
every repair logged at INFO with its count (``validate="repair"``). See ``docs/ehr.md``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from equisynth.exceptions import ConfigError, DataError, InputFileError
from equisynth.io import atomic_output_dir

__all__ = ["COHORT_FORMAT_VERSION", "Cohort", "Patient", "VisitCodes"]

logger = logging.getLogger(__name__)

#: Version of the on-disk format written by :meth:`Cohort.to_parquet`.
COHORT_FORMAT_VERSION = 1
_MARKER = "cohort.json"
_FILES = ("static", "visits", "codes")
_REQUIRED = {
    "static": ("patient_id",),
    "visits": ("patient_id", "visit_id", "time"),
    "codes": ("visit_id", "vocabulary", "code"),
}
Validate = Literal["raise", "repair"]


@dataclass(frozen=True)
class VisitCodes:
    """One visit: its id, its time and the set of its code tokens ``"vocabulary:code"``."""

    visit_id: str
    time: Any
    codes: frozenset[str]


@dataclass(frozen=True)
class Patient:
    """One patient: id and visits in time order."""

    patient_id: str
    visits: tuple[VisitCodes, ...]


# ----------------------------------------------------------------------------- validation
class _Checker:
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


def _is_text(s: pd.Series) -> bool:
    return (
        pd.api.types.is_object_dtype(s)
        or pd.api.types.is_string_dtype(s)
        or isinstance(s.dtype, pd.CategoricalDtype)
    )


def _as_time(s: pd.Series, name: str, check: _Checker) -> pd.Series:
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


def _dedupe(df: pd.DataFrame, name: str, check: _Checker) -> pd.DataFrame:
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


def _check_static(static: pd.DataFrame, check: _Checker) -> pd.DataFrame:
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


def _fill_demographics(static: pd.DataFrame, check: _Checker) -> pd.DataFrame:
    for col in static.columns.drop("patient_id"):
        s = static[col]
        if not _is_text(s):
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


def _check_visits(visits: pd.DataFrame, known: set[str], check: _Checker) -> pd.DataFrame:
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


def _check_codes(codes: pd.DataFrame, visits: pd.DataFrame, check: _Checker) -> pd.DataFrame:
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


def _validate(static, visits, codes, mode: str):
    check = _Checker(mode)
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


# ----------------------------------------------------------------------------- the model
class Cohort:
    """Patients with ordered visits of coded events, validated on construction.

    Parameters
    ----------
    static : DataFrame
        One row per patient: ``patient_id`` and demographics/labels. Missing values in text
        (object, string, category) columns count as missing demographics; numeric and
        datetime columns may hold missing values (e.g. ``death_date`` of a living patient).
    visits : DataFrame
        ``patient_id``, ``visit_id``, ``time`` (datetime64 or numeric) and optional columns;
        ``end_time`` (same kind as ``time``) and ``died`` (bool) are checked when present.
    codes : DataFrame
        ``visit_id``, ``vocabulary``, ``code`` and an optional ``time``. Visits may have no
        code (they still carry times and outcomes).
    validate : {"raise", "repair"}
        ``"raise"``: refuse bad input with a one-line :class:`DataError` naming the problem,
        its count, an example id and the fix. ``"repair"``: drop exact duplicate rows, sort
        visits by time, drop empty/blank codes, codes of unknown visits, visits of unknown
        patients or without a time, and patients without visits; fill missing demographics
        with ``"unknown"``; each repair is logged at INFO with its count (and kept in
        :attr:`repairs`). Conflicting rows with the same ``patient_id`` or ``visit_id`` are
        refused in both modes.

    Examples
    --------
    >>> import pandas as pd
    >>> static = pd.DataFrame({"patient_id": ["p1", "p2"], "sex": ["F", "M"]})
    >>> visits = pd.DataFrame({"patient_id": ["p1", "p1", "p2"], "visit_id": ["a", "b", "c"],
    ...                        "time": [1.0, 2.0, 1.0]})
    >>> codes = pd.DataFrame({"visit_id": ["a", "b", "b", "c"],
    ...                       "vocabulary": ["dx", "dx", "rx", "dx"],
    ...                       "code": ["401", "250", "insulin", "401"]})
    >>> cohort = Cohort(static, visits, codes)
    >>> cohort.n_patients, cohort.n_visits, cohort.vocabularies
    (2, 3, ['dx', 'rx'])
    >>> sorted(cohort.patients[0].visits[1].codes)
    ['dx:250', 'rx:insulin']
    """

    def __init__(
        self,
        static: pd.DataFrame,
        visits: pd.DataFrame,
        codes: pd.DataFrame,
        *,
        validate: Validate = "raise",
    ) -> None:
        if validate not in ("raise", "repair"):
            raise ConfigError(f"validate must be 'raise' or 'repair', got {validate!r}")
        self.static, self.visits, self.codes, self.repairs = _validate(
            static, visits, codes, validate
        )
        self._patients: list[Patient] | None = None

    # ------------------------------------------------------------------ views
    @property
    def n_patients(self) -> int:
        return len(self.static)

    @property
    def n_visits(self) -> int:
        return len(self.visits)

    @property
    def n_codes(self) -> int:
        """Number of code rows (a code recorded twice in one visit with two times counts twice)."""
        return len(self.codes)

    @property
    def vocabularies(self) -> list[str]:
        return sorted(self.codes["vocabulary"].unique().tolist())

    @property
    def time_kind(self) -> str:
        """``"datetime"`` or ``"numeric"``: the kind of ``visits.time``."""
        is_dt = pd.api.types.is_datetime64_any_dtype(self.visits["time"])
        return "datetime" if is_dt else "numeric"

    def tokens(self) -> pd.Series:
        """Token ``"vocabulary:code"`` of each row of :attr:`codes`."""
        return (self.codes["vocabulary"] + ":" + self.codes["code"]).rename("token")

    def visit_codes(self) -> dict[str, frozenset[str]]:
        """The set of tokens of each visit that has codes, by ``visit_id``."""
        grouped = self.tokens().groupby(self.codes["visit_id"].to_numpy(), sort=False)
        return {k: frozenset(v) for k, v in grouped}

    @property
    def patients(self) -> list[Patient]:
        """Patients in the order of :attr:`static`, each with visits in time order."""
        if self._patients is None:
            by_visit = self.visit_codes()
            empty: frozenset[str] = frozenset()
            visits = {
                pid: tuple(
                    VisitCodes(v, t, by_visit.get(v, empty))
                    for v, t in zip(g["visit_id"], g["time"], strict=True)
                )
                for pid, g in self.visits.groupby("patient_id", sort=False)
            }
            self._patients = [Patient(pid, visits[pid]) for pid in self.static["patient_id"]]
        return self._patients

    def select(self, patient_ids: Iterable[str]) -> Cohort:
        """The cohort of the given patients (in the order of :attr:`static`)."""
        keep = set(map(str, patient_ids))
        unknown = keep - set(self.static["patient_id"])
        if unknown:
            raise DataError(
                f"{len(unknown)} patient id(s) not in the cohort (e.g. {sorted(unknown)[0]!r})"
            )
        static = self.static[self.static["patient_id"].isin(keep)]
        visits = self.visits[self.visits["patient_id"].isin(keep)]
        codes = self.codes[self.codes["visit_id"].isin(visits["visit_id"])]
        return Cohort(static, visits, codes)

    def summary(self) -> pd.DataFrame:
        """Tidy statistics: ``statistic``, ``value``.

        Patients, visits, code rows and distinct codes (overall and per vocabulary), visits
        per patient and distinct codes per visit (mean and quantiles), visits without codes,
        and the share of patients in each value of every text column of ``static``.

        Examples
        --------
        >>> import pandas as pd
        >>> c = Cohort(pd.DataFrame({"patient_id": ["p"]}),
        ...            pd.DataFrame({"patient_id": ["p"], "visit_id": ["v"], "time": [0.0]}),
        ...            pd.DataFrame({"visit_id": ["v"], "vocabulary": ["dx"], "code": ["1"]}))
        >>> float(c.summary().set_index("statistic").loc["patients", "value"])
        1.0
        """
        rows: list[tuple[str, float]] = [
            ("patients", self.n_patients),
            ("visits", self.n_visits),
            ("code_rows", self.n_codes),
            ("distinct_codes", self.tokens().nunique()),
        ]
        for vocab, g in self.codes.groupby("vocabulary"):
            rows.append((f"code_rows[{vocab}]", len(g)))
            rows.append((f"distinct_codes[{vocab}]", g["code"].nunique()))
        per_patient = self.visits.groupby("patient_id").size()
        sets = self.visit_codes()
        per_visit = pd.Series([len(sets.get(v, ())) for v in self.visits["visit_id"]])
        for name, s in (("visits_per_patient", per_patient), ("codes_per_visit", per_visit)):
            rows.append((f"{name}_mean", s.mean()))
            for q in (0.0, 0.25, 0.5, 0.75, 1.0):
                rows.append((f"{name}_q{int(q * 100)}", s.quantile(q)))
        rows.append(("visits_without_codes", int((per_visit == 0).sum())))
        for col in self.static.columns.drop("patient_id"):
            s = self.static[col]
            if _is_text(s) and s.nunique() <= 50:
                for value, share in s.astype(str).value_counts(normalize=True).items():
                    rows.append((f"share[{col}={value}]", share))
        out = pd.DataFrame(rows, columns=["statistic", "value"])
        out["value"] = out["value"].astype(float)
        return out

    def __repr__(self) -> str:
        return (
            f"Cohort({self.n_patients} patients, {self.n_visits} visits, {self.n_codes} codes, "
            f"vocabularies={self.vocabularies})"
        )

    # ------------------------------------------------------------------ files
    def to_parquet(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write the cohort to ``directory`` (three Parquet files and ``cohort.json``), atomically.

        An existing ``directory`` is replaced only with ``overwrite=True`` and only if it is an
        earlier cohort directory (holds ``cohort.json``) or empty.

        Examples
        --------
        >>> import tempfile, os, pandas as pd
        >>> c = Cohort(pd.DataFrame({"patient_id": ["p"]}),
        ...            pd.DataFrame({"patient_id": ["p"], "visit_id": ["v"], "time": [0.0]}),
        ...            pd.DataFrame({"visit_id": ["v"], "vocabulary": ["dx"], "code": ["1"]}))
        >>> path = c.to_parquet(os.path.join(tempfile.mkdtemp(), "cohort"))
        >>> Cohort.from_parquet(path).n_visits
        1
        """
        meta = {
            "format": "equisynth-cohort",
            "format_version": COHORT_FORMAT_VERSION,
            "n_patients": self.n_patients,
            "n_visits": self.n_visits,
            "n_codes": self.n_codes,
            "time_kind": self.time_kind,
            "vocabularies": self.vocabularies,
        }
        with atomic_output_dir(directory, overwrite, marker=_MARKER) as tmp:
            for name in _FILES:
                getattr(self, name).to_parquet(tmp / f"{name}.parquet", index=False)
            (tmp / _MARKER).write_text(json.dumps(meta, indent=2) + "\n")
        return Path(directory)

    @classmethod
    def from_parquet(cls, directory: str | Path) -> Cohort:
        """Read a cohort written by :meth:`to_parquet` (validated with ``validate="raise"``)."""
        directory = Path(directory)
        if not directory.is_dir():
            raise InputFileError(
                f"cohort directory '{directory}' does not exist; give a directory written by "
                "Cohort.to_parquet"
            )
        try:
            meta = json.loads((directory / _MARKER).read_text())
        except (OSError, ValueError) as exc:
            raise InputFileError(
                f"'{directory}' is not a cohort directory: cannot read {_MARKER} "
                f"({type(exc).__name__}); give a directory written by Cohort.to_parquet"
            ) from None
        version = meta.get("format_version") if isinstance(meta, dict) else None
        if not isinstance(meta, dict) or meta.get("format") != "equisynth-cohort":
            raise InputFileError(f"'{directory / _MARKER}' does not describe an equisynth cohort")
        if version != COHORT_FORMAT_VERSION:
            raise InputFileError(
                f"cohort '{directory}' has format version {version!r}; this equisynth reads "
                f"version {COHORT_FORMAT_VERSION}; rewrite it with a matching equisynth"
            )
        tables = {}
        for name in _FILES:
            path = directory / f"{name}.parquet"
            try:
                tables[name] = pd.read_parquet(path)
            except Exception as exc:  # pyarrow raises its own error types
                raise InputFileError(
                    f"cannot read '{path}' ({type(exc).__name__}); the cohort directory is "
                    "incomplete or damaged, write it again"
                ) from None
        return cls(tables["static"], tables["visits"], tables["codes"], validate="raise")
