"""A generic long event table (patient, time, code[, vocabulary][, visit]) plus a static table.

Without a visit column, the events of one patient on the same calendar day form one visit
(``same_visit="day"``, the default for datetime times: an EHR day is the usual unit of an
outpatient encounter and of code dating), or those at exactly the same time
(``same_visit="time"``; always the rule for numeric times). A visit's ``time`` is the earliest
time of its events; each code keeps its event time as ``codes.time``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pandas as pd

from equisynth.data._cohort_checks import Checker
from equisynth.data.cohort import Cohort, Validate
from equisynth.data.loaders._tables import parse_dates
from equisynth.exceptions import ConfigError, DataError
from equisynth.io import read_table, table_format

__all__ = ["load_events"]


def _table(obj: pd.DataFrame | str | Path, what: str, text_cols: Sequence[str]) -> pd.DataFrame:
    if isinstance(obj, pd.DataFrame):
        df = obj.copy()
        name = f"the {what} DataFrame"
    elif isinstance(obj, str | Path):
        df = read_table(obj)
        name = f"'{obj}'"
    else:
        raise DataError(f"{what} must be a DataFrame or a file path, got {type(obj).__name__}")
    missing = [c for c in text_cols if c not in df.columns]
    if missing:
        raise DataError(
            f"{name} lacks column(s) {missing} (has {list(df.columns)[:15]}); name existing "
            "columns in the loader's *_col arguments"
        )
    if not isinstance(obj, pd.DataFrame) and table_format(obj) != "parquet":
        # re-read ids and codes as text: CSV type inference drops leading zeros ("0389" -> 389)
        text = pd.read_csv(
            obj,
            sep="\t" if table_format(obj) == "tsv" else ",",
            usecols=list(dict.fromkeys(text_cols)),
            dtype=str,
        )
        for c in text_cols:
            df[c] = text[c].to_numpy()
    return df


def _times(s: pd.Series, check: Checker) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        raise DataError(f"event times in {s.name!r} are booleans; expected dates or numbers")
    if pd.api.types.is_datetime64_any_dtype(s):
        return parse_dates(s)
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.astype("float64")
    numeric = pd.to_numeric(s, errors="coerce")
    if numeric.notna().sum() == s.notna().sum():
        return numeric.astype("float64")
    out = parse_dates(s)
    bad = out.isna() & s.notna()
    check.problem(
        "event times that are neither dates nor numbers",
        int(bad.sum()),
        s[bad].iloc[0] if bad.any() else None,
        "fix those values",
        "drop those events",
    )
    return out


def load_events(
    events: pd.DataFrame | str | Path,
    static: pd.DataFrame | str | Path,
    *,
    patient_col: str,
    time_col: str,
    code_col: str,
    vocabulary_col: str | None = None,
    visit_col: str | None = None,
    static_patient_col: str | None = None,
    vocabulary: str = "events",
    same_visit: Literal["day", "time"] = "day",
    date_cols: Sequence[str] = (),
    validate: Validate = "repair",
) -> Cohort:
    """Build a cohort from a long event table and a static (one row per patient) table.

    Parameters
    ----------
    events, static : DataFrame or path
        Tables or files (CSV, CSV.gz, TSV or Parquet, see :func:`equisynth.io.read_table`).
        Id, code, vocabulary and visit columns of CSV files are read as text.
    patient_col, time_col, code_col : str
        Columns of ``events``: patient id, event time (datetime, ISO text or number), code.
    vocabulary_col : str, optional
        Column naming each code's vocabulary; without it every code is in ``vocabulary``.
    visit_col : str, optional
        Column of visit ids; without it visits are grouped by ``same_visit``.
    static_patient_col : str, optional
        Patient id column of ``static`` (default: ``patient_col``).
    vocabulary : str
        Vocabulary name used when ``vocabulary_col`` is None.
    same_visit : {"day", "time"}
        Without ``visit_col``: one visit per patient and calendar day, or per exact time.
    date_cols : sequence of str
        Columns of ``static`` to parse as dates (e.g. ``"death_date"`` for mortality tasks).
    validate : {"repair", "raise"}
        Passed to :class:`Cohort`; also applies to events without a patient or a valid time.

    Examples
    --------
    >>> import pandas as pd
    >>> events = pd.DataFrame({"pid": ["a", "a", "a", "b"],
    ...                        "t": ["2020-01-01 08:00", "2020-01-01 17:00", "2020-02-01",
    ...                              "2020-01-05"],
    ...                        "code": ["I10", "E11", "I10", "J45"]})
    >>> static = pd.DataFrame({"pid": ["a", "b"], "sex": ["F", "M"]})
    >>> c = load_events(events, static, patient_col="pid", time_col="t", code_col="code")
    >>> [len(p.visits) for p in c.patients]
    [2, 1]
    >>> sorted(c.patients[0].visits[0].codes)
    ['events:E11', 'events:I10']
    """
    if same_visit not in ("day", "time"):
        raise ConfigError(f"same_visit must be 'day' or 'time', got {same_visit!r}")
    if validate not in ("raise", "repair"):
        raise ConfigError(f"validate must be 'raise' or 'repair', got {validate!r}")
    if vocabulary_col is None and (not vocabulary or any(ch in vocabulary for ch in ": \t")):
        raise ConfigError(
            f"vocabulary must be a non-empty name without ':' or spaces, got {vocabulary!r}"
        )
    static_patient_col = static_patient_col or patient_col
    text_cols = [patient_col, code_col, *(c for c in (vocabulary_col, visit_col) if c)]
    ev = _table(events, "events", text_cols)
    if time_col not in ev.columns:
        raise DataError(
            f"the events table lacks the time column {time_col!r}; has {list(ev.columns)[:15]}"
        )
    st = _table(static, "static", [static_patient_col])
    missing_dates = [c for c in date_cols if c not in st.columns]
    if missing_dates:
        raise DataError(f"the static table lacks date column(s) {missing_dates}")
    if static_patient_col != "patient_id":
        if "patient_id" in st.columns:
            raise DataError(
                f"the static table has both {static_patient_col!r} and 'patient_id'; rename one"
            )
        st = st.rename(columns={static_patient_col: "patient_id"})
    check = Checker(validate)
    for c in date_cols:
        parsed = parse_dates(st[c])
        bad = parsed.isna() & st[c].notna()
        check.problem(
            f"static {c!r} values that are not dates",
            int(bad.sum()),
            st.loc[bad, c].iloc[0] if bad.any() else None,
            "fix them",
            "treat them as missing",
        )
        st[c] = parsed
    time = _times(ev[time_col], check)
    no_patient = ev[patient_col].isna() | (ev[patient_col].astype(str).str.strip() == "")
    check.problem(
        "events without a patient id",
        int(no_patient.sum()),
        ev.index[no_patient][0] if no_patient.any() else None,
        "fill or drop them",
        "drop those events",
    )
    no_time = ~no_patient & time.isna()
    check.problem(
        "events without a time",
        int(no_time.sum()),
        ev.loc[no_time, patient_col].iloc[0] if no_time.any() else None,
        "fill or drop them",
        "drop those events",
    )
    keep = ~no_patient & ~no_time
    ev, time = ev.loc[keep], time[keep]
    patient = ev[patient_col].astype(str).str.strip()
    if visit_col is not None:
        visit = ev[visit_col]
    else:
        is_dt = pd.api.types.is_datetime64_any_dtype(time)
        if not is_dt:
            key = time.map(repr)
        elif same_visit == "day":
            key = time.dt.strftime("%Y-%m-%d")
        else:
            key = time.dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
        visit = patient + "@" + key
    frame = pd.DataFrame(
        {
            "patient_id": patient,
            "visit_id": visit,
            "vocabulary": ev[vocabulary_col] if vocabulary_col else vocabulary,
            "code": ev[code_col],
            "time": time,
        }
    )
    visits = frame.groupby(["patient_id", "visit_id"], sort=False, dropna=False)["time"].min()
    visits = visits.reset_index().sort_values(["patient_id", "time"], kind="stable")
    codes = frame.groupby(["visit_id", "vocabulary", "code"], sort=False, dropna=False)["time"]
    return Cohort(st, visits, codes.min().reset_index(), validate=validate)
