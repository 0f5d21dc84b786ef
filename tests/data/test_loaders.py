"""MIMIC-III and Synthea loaders on the real data (counts checked against the raw CSVs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from equisynth.data.loaders import ethnicity_group, load_mimic3, load_source, load_synthea
from equisynth.exceptions import ConfigError, DataError, InputFileError

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
MIMIC = DATA / "mimic3_demo"
SYNTHEA = DATA / "synthea_1k"


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str)


@pytest.fixture(scope="module")
def mimic():
    if not MIMIC.is_dir():
        pytest.skip("mimic3_demo data not available")
    return load_mimic3(MIMIC)


@pytest.fixture(scope="module")
def synthea():
    if not SYNTHEA.is_dir():
        pytest.skip("synthea_1k data not available")
    return load_synthea(SYNTHEA)


# ------------------------------------------------------------------ MIMIC-III demo
def test_mimic3_visits_are_the_admissions(mimic):
    adm = _csv(MIMIC / "ADMISSIONS.csv")
    assert mimic.n_patients == adm["subject_id"].nunique() == 100
    assert mimic.n_visits == len(adm) == 129
    v = mimic.visits.set_index("visit_id")
    raw = adm.set_index("hadm_id")
    assert v["died"].sum() == (raw["hospital_expire_flag"] == "1").sum() == 40
    assert (v.loc[raw.index, "time"] == pd.to_datetime(raw["admittime"])).all()
    assert (v["end_time"] >= v["time"]).all()
    # visits in time order within each patient
    assert (mimic.visits.groupby("patient_id")["time"].diff().dropna() >= pd.Timedelta(0)).all()


def test_mimic3_codes_match_the_tables_with_leading_zeros(mimic):
    dx = _csv(MIMIC / "DIAGNOSES_ICD.csv")
    px = _csv(MIMIC / "PROCEDURES_ICD.csv")
    rx = pd.read_csv(MIMIC / "PRESCRIPTIONS.csv.gz", dtype=str)
    codes = mimic.codes
    is_dx = codes.vocabulary == "diagnoses"
    got_dx = set(zip(codes.loc[is_dx, "visit_id"], codes.loc[is_dx, "code"], strict=True))
    assert got_dx == set(zip(dx["hadm_id"], dx["icd9_code"], strict=True))
    assert any(c.startswith("0") for _, c in got_dx)  # e.g. 0389 (septicemia)
    got_px = codes[codes.vocabulary == "procedures"]
    assert len(got_px) == len(px.drop_duplicates(["hadm_id", "icd9_code"]))
    drugs = rx["drug"].str.strip().str.lower().str.replace(r"\s+", " ", regex=True)
    assert (codes.vocabulary == "medications").sum() == len(
        pd.DataFrame({"h": rx["hadm_id"], "d": drugs}).drop_duplicates()
    )
    assert mimic.codes.loc[codes.vocabulary == "medications", "time"].notna().all()


def test_mimic3_demographics(mimic):
    s = mimic.static.set_index("patient_id")
    pat = _csv(MIMIC / "PATIENTS.csv").set_index("subject_id")
    assert (s["gender"] == pat.loc[s.index, "gender"]).all()
    assert set(s["ethnicity_group"]) <= {"White", "Black", "Hispanic", "Asian", "Other"}
    adm = _csv(MIMIC / "ADMISSIONS.csv").sort_values("admittime")
    first = adm.drop_duplicates("subject_id").set_index("subject_id")["ethnicity"]
    assert (s["ethnicity_group"] == "White").sum() == first.str.startswith("WHITE").sum()
    # ages over 89 are shifted to ~300 years by MIMIC: they land in the top group, age 90
    dob = pd.to_datetime(pat["dob"]).dt.year
    first_year = pd.to_datetime(
        adm.drop_duplicates("subject_id").set_index("subject_id")["admittime"]
    ).dt.year
    shifted = (first_year - dob.reindex(first_year.index)) > 150
    assert shifted.sum() > 0
    assert (s.loc[shifted[shifted].index, "age"] == 90).all()
    assert (s.loc[shifted[shifted].index, "age_group"] == "80+").all()
    assert s["age"].max() == 90 and s["age"].min() >= 0
    assert s["death_date"].notna().all()  # every demo patient died eventually


def test_ethnicity_mapping_of_mimic_strings():
    raw = pd.Series(
        [
            "WHITE - RUSSIAN",
            "BLACK/CAPE VERDEAN",
            "HISPANIC/LATINO - PUERTO RICAN",
            "SOUTH AMERICAN",
            "ASIAN - ASIAN INDIAN",
            "AMERICAN INDIAN/ALASKA NATIVE",
            "MULTI RACE ETHNICITY",
            "PATIENT DECLINED TO ANSWER",
        ]
    )
    assert ethnicity_group(raw).tolist() == [
        "White",
        "Black",
        "Hispanic",
        "Hispanic",
        "Asian",
        "Other",
        "Other",
        "Other",
    ]


def test_mimic3_vocabulary_subset_and_ndc_codes(mimic):
    c = load_mimic3(MIMIC, vocabularies=["medications"], medication_code="ndc")
    assert c.vocabularies == ["medications"]
    assert not (c.codes["code"] == "0").any()  # MIMIC's "no NDC"
    assert c.n_patients == 100  # every demo admission has prescriptions
    with pytest.raises(ConfigError, match="unknown MIMIC-III vocabularies"):
        load_mimic3(MIMIC, vocabularies=["labs"])


def test_mimic3_missing_file_and_column_are_named(tmp_path, mimic):
    for name in ("ADMISSIONS.csv", "PATIENTS.csv", "DIAGNOSES_ICD.csv"):
        shutil.copy(MIMIC / name, tmp_path / name)
    with pytest.raises(InputFileError, match=r"no PROCEDURES_ICD\.csv or PROCEDURES_ICD\.csv\.gz"):
        load_mimic3(tmp_path)
    pd.read_csv(MIMIC / "ADMISSIONS.csv").drop(columns="admittime").to_csv(
        tmp_path / "ADMISSIONS.csv", index=False
    )
    with pytest.raises(DataError, match=r"ADMISSIONS\.csv' lacks column\(s\) \['ADMITTIME'\]"):
        load_mimic3(tmp_path, vocabularies=["diagnoses"])
    with pytest.raises(InputFileError, match="does not exist"):
        load_mimic3(tmp_path / "nope")


# ------------------------------------------------------------------ Synthea
def test_synthea_visits_are_rebuilt_from_encounters(synthea):
    pat = _csv(SYNTHEA / "patients.csv")
    assert synthea.n_patients == len(pat) == 1171
    tables = {
        "conditions": pd.read_csv(SYNTHEA / "conditions.csv.gz", dtype=str),
        "immunizations": pd.read_csv(SYNTHEA / "immunizations.csv.gz", dtype=str),
        "careplans": _csv(SYNTHEA / "careplans.csv"),
    }
    pairs = pd.concat([t[["PATIENT", "ENCOUNTER"]] for t in tables.values()]).drop_duplicates()
    assert synthea.n_visits == len(pairs)
    for vocab, t in tables.items():
        got = synthea.codes[synthea.codes.vocabulary == vocab]
        assert len(got) == len(t.drop_duplicates(["ENCOUNTER", "CODE"]))
    # a visit's time is the day of its earliest event
    cond = tables["conditions"].groupby("ENCOUNTER")["START"].min()
    v = synthea.visits.set_index("visit_id")["time"]
    only_cond = cond.index.difference(tables["immunizations"]["ENCOUNTER"]).difference(
        tables["careplans"]["ENCOUNTER"]
    )
    assert (v[only_cond] == pd.to_datetime(cond[only_cond])).all()
    assert (synthea.visits.groupby("patient_id")["time"].diff().dropna() >= pd.Timedelta(0)).all()


def test_synthea_demographics_and_death(synthea):
    pat = _csv(SYNTHEA / "patients.csv").set_index("Id")
    s = synthea.static.set_index("patient_id")
    assert s["race"].value_counts().to_dict() == pat["RACE"].value_counts().to_dict()
    assert (s["ethnicity"] == pat.loc[s.index, "ETHNICITY"]).all()
    assert s["death_date"].notna().sum() == pat["DEATHDATE"].notna().sum() == 171
    assert s["age"].min() >= 0 and not (s["age_group"] == "unknown").any()
    first = synthea.visits.groupby("patient_id")["time"].min()
    assert (first >= s.loc[first.index, "birth_date"]).all()


def test_load_source_parses_the_cli_value(tmp_path, mimic):
    assert load_source(f"mimic3:{MIMIC}").n_visits == 129
    mimic.to_parquet(tmp_path / "c")
    assert load_source(f"cohort:{tmp_path / 'c'}").n_visits == 129
    with pytest.raises(DataError, match="unknown data source kind 'csv'"):
        load_source("csv:x.csv")
    with pytest.raises(DataError, match="no data source kind"):
        load_source(str(MIMIC))
    with pytest.raises(InputFileError, match="does not exist"):
        load_source(f"synthea:{tmp_path / 'missing'}")
    with pytest.raises(InputFileError, match="has no path"):
        load_source("synthea:")


def test_load_source_repairs_a_cohort_directory_like_the_raw_loaders(tmp_path, mimic):
    path = mimic.to_parquet(tmp_path / "c")
    visits = pd.read_parquet(path / "visits.parquet")
    pd.concat([visits, visits.iloc[[0]]]).to_parquet(path / "visits.parquet", index=False)
    assert load_source(f"cohort:{path}").n_visits == 129
    with pytest.raises(DataError, match="duplicate"):
        load_source(f"cohort:{path}", validate="raise")
