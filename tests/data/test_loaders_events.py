"""Generic event-table loader, and the MIMIC/Synthea loaders on small hand-written exports."""

from __future__ import annotations

import gzip
import logging

import pandas as pd
import pytest

from equisynth.data.loaders import load_events, load_mimic3, load_synthea
from equisynth.exceptions import ConfigError, DataError, InputFileError


def _events():
    return pd.DataFrame(
        {
            "pid": ["a", "a", "a", "a", "b"],
            "t": [
                "2020-01-01 08:00",
                "2020-01-01 17:30",
                "2020-02-01 09:00",
                "2020-02-01 09:00",
                "2020-01-05 00:00",
            ],
            "code": ["I10", "E11", "I10", "I10", "J45"],
            "vocab": ["dx", "dx", "dx", "rx", "dx"],
        }
    )


def _static():
    return pd.DataFrame({"pid": ["a", "b"], "sex": ["F", "M"], "dod": ["2020-03-01", None]})


def test_same_day_events_form_one_visit_with_the_earliest_time():
    c = load_events(
        _events(), _static(), patient_col="pid", time_col="t", code_col="code",
        vocabulary_col="vocab", date_cols=["dod"],
    )  # fmt: skip
    a = c.patients[0]
    assert [sorted(v.codes) for v in a.visits] == [["dx:E11", "dx:I10"], ["dx:I10", "rx:I10"]]
    assert a.visits[0].time == pd.Timestamp("2020-01-01 08:00")
    assert c.static["dod"].dtype.kind == "M" and c.static["dod"].isna().tolist() == [False, True]
    by_time = load_events(
        _events(), _static(), patient_col="pid", time_col="t", code_col="code", same_visit="time"
    )
    assert len(by_time.patients[0].visits) == 3
    assert by_time.vocabularies == ["events"]


def test_visit_column_and_numeric_times():
    ev = pd.DataFrame(
        {"p": [1, 1, 2], "day": [0.0, 3.5, 1.0], "c": ["x", "y", "x"], "v": ["v1", "v1", "v2"]}
    )
    st = pd.DataFrame({"p": [1, 2], "g": ["F", "M"]})
    c = load_events(ev, st, patient_col="p", time_col="day", code_col="c", visit_col="v")
    assert c.time_kind == "numeric" and c.n_visits == 2
    assert c.patients[0].visits[0].codes == frozenset({"events:x", "events:y"})
    assert c.patients[0].visits[0].time == 0.0


def test_csv_and_parquet_files_keep_codes_as_text(tmp_path):
    ev = pd.DataFrame({"pid": ["007", "007"], "t": ["2020-01-01", "2020-01-02"],
                       "code": ["0389", "4019"]})  # fmt: skip
    st = pd.DataFrame({"pid": ["007"], "sex": ["F"]})
    ev.to_csv(tmp_path / "e.csv", index=False)
    st.to_csv(tmp_path / "s.csv", index=False)
    c = load_events(tmp_path / "e.csv", tmp_path / "s.csv", patient_col="pid", time_col="t",
                    code_col="code")  # fmt: skip
    assert c.static["patient_id"].tolist() == ["007"]
    assert c.patients[0].visits[0].codes == frozenset({"events:0389"})
    ev.to_parquet(tmp_path / "e.parquet")
    st.to_parquet(tmp_path / "s.parquet")
    c2 = load_events(tmp_path / "e.parquet", tmp_path / "s.parquet", patient_col="pid",
                     time_col="t", code_col="code")  # fmt: skip
    assert c2.patients[0].visits[0].codes == c.patients[0].visits[0].codes


def test_bad_event_tables_give_one_line_errors(tmp_path, caplog):
    kw = {"patient_col": "pid", "time_col": "t", "code_col": "code"}
    with pytest.raises(DataError, match=r"lacks column\(s\) \['code'\]"):
        load_events(_events().drop(columns="code"), _static(), **kw)
    with pytest.raises(DataError, match="lacks the time column 't'"):
        load_events(_events().drop(columns="t"), _static(), **kw)
    with pytest.raises(InputFileError, match="does not exist"):
        load_events(tmp_path / "none.csv", _static(), **kw)
    with pytest.raises(ConfigError, match="same_visit"):
        load_events(_events(), _static(), same_visit="week", **kw)
    bad = _events()
    bad.loc[0, "t"] = "not a date"
    bad.loc[1, "pid"] = None
    with pytest.raises(DataError, match="event times that are neither dates nor numbers: 1"):
        load_events(bad, _static(), validate="raise", **kw)
    with caplog.at_level(logging.INFO):
        c = load_events(bad, _static(), **kw)
    assert (c.n_visits, c.n_codes) == (2, 2)  # a: I10 twice on 02-01 is one code; b: J45
    assert "neither dates nor numbers" in caplog.text and "without a patient id" in caplog.text
    with pytest.raises(DataError, match="visits of patients not in static: 1"):
        load_events(_events(), _static().iloc[:1], validate="raise", **kw)


# ------------------------------------------------------------------ hand-written exports
def _write(path, df, gz=False):
    if gz:
        with gzip.open(path, "wt") as fh:
            df.to_csv(fh, index=False)
    else:
        df.to_csv(path, index=False)


def test_mimic3_loader_reads_upper_case_tables_and_repairs_bad_rows(tmp_path, caplog):
    adm = pd.DataFrame(
        {
            "ROW_ID": [1, 2, 3],
            "SUBJECT_ID": [1, 1, 2],
            "HADM_ID": [11, 12, 21],
            "ADMITTIME": ["2100-01-01 10:00:00", "2100-01-20 10:00:00", "2150-05-05 00:00:00"],
            "DISCHTIME": ["2100-01-05 10:00:00", "2100-01-25 10:00:00", "2150-05-06 00:00:00"],
            "DEATHTIME": [None, "2100-01-25 10:00:00", None],
            "ETHNICITY": ["UNKNOWN/NOT SPECIFIED", "ASIAN - CHINESE", "HISPANIC OR LATINO"],
            "INSURANCE": ["Private", "Medicare", "Medicaid"],
            "HOSPITAL_EXPIRE_FLAG": [0, 1, 0],
        }
    )
    pat = pd.DataFrame({"SUBJECT_ID": [1, 2], "GENDER": ["M", "F"],
                        "DOB": ["2050-06-01 00:00:00", "1850-01-01 00:00:00"],
                        "DOD": ["2100-01-25 00:00:00", None]})  # fmt: skip
    dx = pd.DataFrame(
        {"HADM_ID": [11, 11, 12, 21, 99], "ICD9_CODE": ["0389", None, "V3000", "4019", "1"]}
    )
    _write(tmp_path / "ADMISSIONS.csv.gz", adm, gz=True)
    _write(tmp_path / "PATIENTS.csv", pat)
    _write(tmp_path / "DIAGNOSES_ICD.csv", dx)
    with caplog.at_level(logging.INFO):
        c = load_mimic3(tmp_path, vocabularies=["diagnoses"])
    assert "codes of visits not in the visits table: 1" in caplog.text  # HADM 99
    assert "empty or missing codes" in caplog.text
    s = c.static.set_index("patient_id")
    assert s.loc["1", "ethnicity_group"] == "Asian"  # first admission that states one
    assert s.loc["2", "ethnicity_group"] == "Hispanic"
    assert (s.loc["1", "age"], s.loc["2", "age"]) == (49.0, 90.0)  # 300 years -> top group
    assert c.visits["died"].tolist() == [False, True, False]
    assert c.patients[0].visits[0].codes == frozenset({"diagnoses:0389"})
    with pytest.raises(DataError, match=r"empty or missing codes \(or vocabularies\): 1"):
        load_mimic3(tmp_path, vocabularies=["diagnoses"], validate="raise")


def test_synthea_loader_uses_encounters_when_present(tmp_path):
    pat = pd.DataFrame({"Id": ["a", "b"], "BIRTHDATE": ["2000-01-01", "1950-06-01"],
                        "DEATHDATE": [None, "2020-01-10"], "RACE": ["white", "black"],
                        "ETHNICITY": ["hispanic", "nonhispanic"], "GENDER": ["F", "M"]})  # fmt: skip
    cond = pd.DataFrame({"START": ["2010-01-01", "2019-12-31", "2020-01-08"],
                         "PATIENT": ["a", "b", "b"], "ENCOUNTER": ["e1", "e2", None],
                         "CODE": ["44054006", "195662009", "22298006"]})  # fmt: skip
    imm = pd.DataFrame({"DATE": ["2010-01-01T10:00:00Z"], "PATIENT": ["a"],
                        "ENCOUNTER": ["e1"], "CODE": ["140"]})  # fmt: skip
    _write(tmp_path / "patients.csv", pat)
    _write(tmp_path / "conditions.csv", cond)
    _write(tmp_path / "immunizations.csv.gz", imm, gz=True)
    with pytest.raises(InputFileError, match=r"no careplans\.csv"):
        load_synthea(tmp_path)
    c = load_synthea(tmp_path, vocabularies=["conditions", "immunizations"])
    assert c.n_visits == 3  # e1, e2 and b's event without encounter (its own day)
    assert c.patients[0].visits[0].codes == frozenset({"conditions:44054006", "immunizations:140"})
    assert c.static.set_index("patient_id")["age"].to_dict() == {"a": 10.0, "b": 69.0}
    enc = pd.DataFrame({"Id": ["e1", "e2"], "START": ["2010-01-01T09:00:00Z", "2019-12-31T08:00:00Z"],
                        "STOP": ["2010-01-01T11:00:00Z", "2020-01-02T08:00:00Z"],
                        "PATIENT": ["a", "b"], "ENCOUNTERCLASS": ["wellness", "inpatient"]})  # fmt: skip
    _write(tmp_path / "encounters.csv", enc)
    c = load_synthea(tmp_path, vocabularies=["conditions", "immunizations"])
    v = c.visits.set_index("visit_id")
    assert v.loc["e2", "encounter_class"] == "inpatient"
    assert v.loc["e2", "end_time"] == pd.Timestamp("2020-01-02 08:00")
    assert pd.isna(v.loc["b@2020-01-08", "end_time"])
