"""MIMIC-III (v1.4, or its open demo) as a :class:`~equisynth.data.cohort.Cohort`.

Tables read from one directory (``NAME.csv`` or ``NAME.csv.gz``, file and column names in any
case): ADMISSIONS and PATIENTS always; DIAGNOSES_ICD, PROCEDURES_ICD and PRESCRIPTIONS for the
vocabularies ``diagnoses``, ``procedures`` and ``medications``.

- Visits are admissions: ``visit_id`` = HADM_ID, ``time`` = ADMITTIME, ``end_time`` =
  DISCHTIME, ``died`` = HOSPITAL_EXPIRE_FLAG (death in hospital during that admission),
  ``death_time`` = DEATHTIME, plus ``admission_type`` and ``insurance`` of the admission.
- Static: ``gender`` (PATIENTS.GENDER), ``age`` (whole years from DOB to the first ADMITTIME;
  MIMIC shifts the DOB of patients older than 89 so that they appear ~300 years old: every age
  above 89 is set to 90, i.e. the top group), ``age_group`` (:data:`AGE_BINS`), ``ethnicity``
  (ETHNICITY of the first admission that states one, else of the first admission),
  ``ethnicity_group`` (:func:`ethnicity_group`), ``insurance`` (of the first admission) and
  ``death_date`` (PATIENTS.DOD, any cause, in or out of hospital).
- Codes: ICD-9 diagnoses and procedures as written (text, leading zeros kept; no time: MIMIC
  assigns them at discharge); medications from PRESCRIPTIONS (by default the DRUG name, lower
  case, spaces collapsed; ``time`` = STARTDATE, the first one if a drug is prescribed several
  times in an admission). An NDC of ``0`` (MIMIC's "no NDC") counts as an empty code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

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
from equisynth.exceptions import ConfigError

__all__ = ["MIMIC3_VOCABULARIES", "ethnicity_group", "load_mimic3"]

#: vocabulary -> (table, code column, time column or None)
MIMIC3_VOCABULARIES = {
    "diagnoses": ("DIAGNOSES_ICD", "ICD9_CODE", None),
    "procedures": ("PROCEDURES_ICD", "ICD9_CODE", None),
    "medications": ("PRESCRIPTIONS", None, "STARTDATE"),
}
MedicationCode = Literal["drug", "drug_name_generic", "formulary_drug_cd", "ndc", "gsn"]
_UNSTATED = {"UNKNOWN/NOT SPECIFIED", "UNABLE TO OBTAIN", "PATIENT DECLINED TO ANSWER", ""}
_TOP_AGE = 90.0


def ethnicity_group(ethnicity: pd.Series) -> pd.Series:
    """MIMIC-III ETHNICITY strings to ``White``, ``Black``, ``Hispanic``, ``Asian`` or ``Other``.

    ``WHITE*`` -> White; ``BLACK*`` -> Black (incl. BLACK/CAPE VERDEAN, BLACK/HAITIAN);
    ``HISPANIC*`` (HISPANIC OR LATINO, HISPANIC/LATINO - PUERTO RICAN, ...) and SOUTH AMERICAN
    -> Hispanic; ``ASIAN*`` (ASIAN - CHINESE, ...) -> Asian; everything else -> Other: AMERICAN
    INDIAN/ALASKA NATIVE*, NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER, CARIBBEAN ISLAND, MIDDLE
    EASTERN, PORTUGUESE, MULTI RACE ETHNICITY, OTHER, UNKNOWN/NOT SPECIFIED, UNABLE TO OBTAIN,
    PATIENT DECLINED TO ANSWER and missing values.

    Examples
    --------
    >>> ethnicity_group(pd.Series(["HISPANIC OR LATINO", "ASIAN - CHINESE", "WHITE",
    ...                            "UNKNOWN/NOT SPECIFIED", None])).tolist()
    ['Hispanic', 'Asian', 'White', 'Other', 'Other']
    """
    e = ethnicity.fillna("").astype(str).str.strip().str.upper()
    conditions = [
        e.str.startswith("WHITE"),
        e.str.startswith("BLACK"),
        e.str.startswith("HISPANIC") | (e == "SOUTH AMERICAN"),
        e.str.startswith("ASIAN"),
    ]
    out = np.select(conditions, ["White", "Black", "Hispanic", "Asian"], default="Other")
    return pd.Series(out, index=ethnicity.index, dtype=object)


def _normalise_medication(code: pd.Series, kind: str) -> pd.Series:
    code = code.str.strip()
    if kind in ("drug", "drug_name_generic"):
        return code.str.lower().str.replace(r"\s+", " ", regex=True)
    if kind in ("ndc", "gsn"):
        return code.where(~code.str.fullmatch(r"0+", na=False))
    return code


def _static(adm: pd.DataFrame, pat: pd.DataFrame, age_bins: Sequence[int]) -> pd.DataFrame:
    adm = adm.sort_values(["SUBJECT_ID", "time"], kind="stable")
    first = adm.groupby("SUBJECT_ID", sort=False).first()  # first non-null value per column
    first_row = adm.drop_duplicates("SUBJECT_ID").set_index("SUBJECT_ID")
    stated = adm[~adm["ETHNICITY"].fillna("").str.strip().str.upper().isin(_UNSTATED)]
    eth = stated.drop_duplicates("SUBJECT_ID").set_index("SUBJECT_ID")["ETHNICITY"]
    eth = eth.reindex(first_row.index).fillna(first_row["ETHNICITY"])
    static = pd.DataFrame({"patient_id": pat["SUBJECT_ID"], "gender": pat["GENDER"]})
    ids = static["patient_id"]
    first_time = first_row["time"].reindex(ids).reset_index(drop=True)
    age = years_between(parse_dates(pat["DOB"]).reset_index(drop=True), first_time)
    static["age"] = age.where(age <= 89, _TOP_AGE).where(age.notna())
    static["age_group"] = age_group(static["age"], age_bins)
    static["ethnicity"] = eth.reindex(ids).to_numpy()
    static["ethnicity_group"] = ethnicity_group(static["ethnicity"]).where(
        static["ethnicity"].notna()
    )
    static["insurance"] = first["INSURANCE"].reindex(ids).to_numpy()
    dod = pat["DOD"] if "DOD" in pat.columns else pd.Series(np.nan, index=pat.index)
    static["death_date"] = parse_dates(dod).to_numpy()
    return static


def load_mimic3(
    directory: str | Path,
    *,
    vocabularies: Sequence[str] = ("diagnoses", "procedures", "medications"),
    medication_code: MedicationCode = "drug",
    age_bins: Sequence[int] = AGE_BINS,
    validate: Validate = "repair",
) -> Cohort:
    """Load MIMIC-III tables from ``directory`` as a cohort of admissions (see module doc).

    Parameters
    ----------
    directory : str or Path
        Folder with ADMISSIONS, PATIENTS and the tables of ``vocabularies`` (.csv or .csv.gz).
    vocabularies : sequence of {"diagnoses", "procedures", "medications"}
    medication_code : {"drug", "drug_name_generic", "formulary_drug_cd", "ndc", "gsn"}
        PRESCRIPTIONS column used as the medication code.
    age_bins : sequence of int
        Lower edges of the age groups (default ``0-17, 18-39, 40-59, 60-79, 80+``).
    validate : {"repair", "raise"}
        Passed to :class:`Cohort`; ``"repair"`` drops (and logs) e.g. codes of admissions that
        are not in ADMISSIONS and empty codes.

    Raises
    ------
    InputFileError
        Missing directory or table, unreadable file.
    DataError
        A table lacks a column (the message names the file and the column).

    Examples
    --------
    >>> cohort = load_mimic3("../shared/data/mimic3_demo")  # doctest: +SKIP
    >>> cohort.n_patients, cohort.n_visits  # doctest: +SKIP
    (100, 129)
    """
    directory = check_directory(directory, "MIMIC-III")
    vocabularies = list(vocabularies)
    unknown = [v for v in vocabularies if v not in MIMIC3_VOCABULARIES]
    if unknown or not vocabularies:
        raise ConfigError(
            f"unknown MIMIC-III vocabularies {unknown or vocabularies}; choose among "
            f"{list(MIMIC3_VOCABULARIES)}"
        )
    med_kinds = ("drug", "drug_name_generic", "formulary_drug_cd", "ndc", "gsn")
    if medication_code not in med_kinds:
        raise ConfigError(f"medication_code must be one of {med_kinds}, got {medication_code!r}")
    age_group(pd.Series([], dtype=float), age_bins)  # validates the bins early
    adm = read_columns(
        find_table(directory, "ADMISSIONS"),
        ["SUBJECT_ID", "HADM_ID", "ADMITTIME", "DISCHTIME", "HOSPITAL_EXPIRE_FLAG"],
        ["DEATHTIME", "ETHNICITY", "INSURANCE", "ADMISSION_TYPE"],
    )
    for col in ("ETHNICITY", "INSURANCE", "ADMISSION_TYPE", "DEATHTIME"):
        if col not in adm.columns:
            adm[col] = np.nan
    pat = read_columns(find_table(directory, "PATIENTS"), ["SUBJECT_ID", "GENDER", "DOB"], ["DOD"])
    adm["time"] = parse_dates(adm["ADMITTIME"])
    flag = adm["HOSPITAL_EXPIRE_FLAG"].str.strip().map({"0": False, "1": True})
    visits = pd.DataFrame(
        {
            "patient_id": adm["SUBJECT_ID"],
            "visit_id": adm["HADM_ID"],
            "time": adm["time"],
            "end_time": parse_dates(adm["DISCHTIME"]),
            "died": flag,
            "death_time": parse_dates(adm["DEATHTIME"]),
            "admission_type": adm["ADMISSION_TYPE"],
            "insurance": adm["INSURANCE"],
        }
    )
    visits = visits.sort_values(["patient_id", "time"], kind="stable")
    static = _static(adm, pat, age_bins)
    parts = []
    for vocab in vocabularies:
        table, code_col, time_col = MIMIC3_VOCABULARIES[vocab]
        code_col = code_col or medication_code.upper()
        df = read_columns(
            find_table(directory, table), ["HADM_ID", code_col], [time_col] if time_col else []
        )
        code = df[code_col]
        if vocab == "medications":
            code = _normalise_medication(code, medication_code)
        part = pd.DataFrame({"visit_id": df["HADM_ID"], "vocabulary": vocab, "code": code})
        part["time"] = parse_dates(df[time_col]) if time_col else pd.NaT
        # a code repeated within an admission is one element of the visit's set: keep the first
        part = part.groupby(["visit_id", "vocabulary", "code"], dropna=False, sort=False)
        parts.append(part["time"].min().reset_index())
    codes = pd.concat(parts, ignore_index=True)
    return Cohort(static, visits, codes, validate=validate)
