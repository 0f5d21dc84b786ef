"""A Synthea CSV export as a :class:`~equisynth.data.cohort.Cohort`.

Tables read from one directory (``name.csv`` or ``name.csv.gz``): ``patients`` and one event
table per vocabulary (``conditions``, ``immunizations``, ``careplans``, ``allergies``,
``procedures``, ``medications``, ``devices``), each with PATIENT, ENCOUNTER, CODE and a date
(START, or DATE where the table has no START).

- Visits are encounters. Without ``encounters.csv`` (e.g. the trimmed sample export) a visit is
  rebuilt from the events that share (PATIENT, ENCOUNTER): ``time`` = the calendar day of its
  earliest event. With ``encounters.csv`` present, ``time`` = its START, ``end_time`` = its
  STOP and ``encounter_class`` = ENCOUNTERCLASS (only encounters that have codes become
  visits). An event without ENCOUNTER is put in a visit of its patient and day.
- Static: ``gender``, ``race``, ``ethnicity`` (as written: e.g. ``white``, ``hispanic``),
  ``age`` (whole years from BIRTHDATE to the first visit), ``age_group`` (:data:`AGE_BINS`),
  ``birth_date`` and ``death_date`` (DEATHDATE, missing for living patients).
- Codes: CODE as text (SNOMED-CT, CVX, ...), ``time`` = the event's date.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from equisynth.data.cohort import Cohort, Validate
from equisynth.data.loaders._tables import (
    AGE_BINS,
    age_group,
    check_directory,
    find_table,
    parse_dates,
    read_columns,
    years_between,
)
from equisynth.exceptions import ConfigError, DataError

__all__ = ["SYNTHEA_VOCABULARIES", "load_synthea"]

#: Synthea event tables usable as vocabularies (file name = vocabulary name).
SYNTHEA_VOCABULARIES = (
    "conditions",
    "immunizations",
    "careplans",
    "allergies",
    "procedures",
    "medications",
    "devices",
)


def _events(directory: Path, vocab: str) -> pd.DataFrame:
    path = find_table(directory, vocab)
    df = read_columns(path, ["PATIENT", "ENCOUNTER", "CODE"], ["START", "DATE"])
    date_col = "START" if "START" in df.columns else "DATE" if "DATE" in df.columns else None
    if date_col is None:
        raise DataError(f"'{path}' lacks a START or DATE column; it is not a Synthea event table")
    time = parse_dates(df[date_col])
    encounter = df["ENCOUNTER"].where(
        df["ENCOUNTER"].notna(), df["PATIENT"] + "@" + time.dt.strftime("%Y-%m-%d")
    )
    return pd.DataFrame(
        {
            "patient_id": df["PATIENT"],
            "visit_id": encounter,
            "vocabulary": vocab,
            "code": df["CODE"],
            "time": time,
        }
    )


def _encounter_times(directory: Path) -> pd.DataFrame | None:
    path = find_table(directory, "encounters", required=False)
    if path is None:
        return None
    df = read_columns(path, ["ID", "START", "PATIENT"], ["STOP", "ENCOUNTERCLASS"])
    out = pd.DataFrame(
        {
            "visit_id": df["ID"],
            "time": parse_dates(df["START"]),
            "end_time": parse_dates(df["STOP"]) if "STOP" in df.columns else pd.NaT,
        }
    )
    if "ENCOUNTERCLASS" in df.columns:
        out["encounter_class"] = df["ENCOUNTERCLASS"]
    return out.drop_duplicates("visit_id")


def load_synthea(
    directory: str | Path,
    *,
    vocabularies: Sequence[str] = ("conditions", "immunizations", "careplans"),
    age_bins: Sequence[int] = AGE_BINS,
    validate: Validate = "repair",
) -> Cohort:
    """Load a Synthea CSV export from ``directory`` as a cohort of encounters (see module doc).

    Parameters
    ----------
    directory : str or Path
        Folder with ``patients.csv`` and the event tables of ``vocabularies`` (.csv or .csv.gz).
    vocabularies : sequence of str
        Among :data:`SYNTHEA_VOCABULARIES`.
    age_bins : sequence of int
        Lower edges of the age groups (default ``0-17, 18-39, 40-59, 60-79, 80+``).
    validate : {"repair", "raise"}
        Passed to :class:`Cohort` (``"repair"`` drops and logs, e.g., patients without events).

    Raises
    ------
    InputFileError
        Missing directory or table, unreadable file.
    DataError
        A table lacks a column (the message names the file and the column).

    Examples
    --------
    >>> cohort = load_synthea("../shared/data/synthea_1k")  # doctest: +SKIP
    >>> cohort.n_patients  # doctest: +SKIP
    1171
    """
    directory = check_directory(directory, "Synthea")
    vocabularies = list(vocabularies)
    unknown = [v for v in vocabularies if v not in SYNTHEA_VOCABULARIES]
    if unknown or not vocabularies:
        raise ConfigError(
            f"unknown Synthea vocabularies {unknown or vocabularies}; choose among "
            f"{list(SYNTHEA_VOCABULARIES)}"
        )
    age_group(pd.Series([], dtype=float), age_bins)  # validates the bins early
    pat = read_columns(
        find_table(directory, "patients"),
        ["ID", "BIRTHDATE", "RACE", "ETHNICITY", "GENDER"],
        ["DEATHDATE"],
    )
    events = pd.concat([_events(directory, v) for v in vocabularies], ignore_index=True)
    day = events["time"].dt.normalize()
    visits = (
        events.assign(time=day)
        .groupby(["patient_id", "visit_id"], sort=False, dropna=False)["time"]
        .min()
        .reset_index()
    )
    encounters = _encounter_times(directory)
    if encounters is not None:
        known = visits[["patient_id", "visit_id"]].merge(encounters, on="visit_id", how="inner")
        rebuilt = visits[~visits["visit_id"].isin(known["visit_id"])]
        visits = pd.concat([known, rebuilt], ignore_index=True)
    visits = visits.sort_values(["patient_id", "time"], kind="stable")
    codes = events.groupby(["visit_id", "vocabulary", "code"], sort=False, dropna=False)
    codes = codes["time"].min().reset_index()
    birth = parse_dates(pat["BIRTHDATE"])
    death = parse_dates(pat["DEATHDATE"]) if "DEATHDATE" in pat.columns else pd.NaT
    first = visits.groupby("patient_id")["time"].min().reindex(pat["ID"]).reset_index(drop=True)
    age = years_between(birth, first)
    static = pd.DataFrame(
        {
            "patient_id": pat["ID"],
            "gender": pat["GENDER"],
            "race": pat["RACE"],
            "ethnicity": pat["ETHNICITY"],
            "age": age.where(age >= 0),
            "age_group": age_group(age.where(age >= 0), age_bins),
            "birth_date": birth,
            "death_date": death,
        }
    )
    static["age_group"] = static["age_group"].where(first.notna().to_numpy(), np.nan)
    return Cohort(static, visits, codes, validate=validate)
