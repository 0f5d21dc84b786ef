"""Cohort: the patients view, summary, Parquet round trip, and every kind of bad input."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from equisynth.data.cohort import Cohort
from equisynth.evaluation.quality.longitudinal import as_visit_sets
from equisynth.exceptions import ConfigError, DataError, InputFileError, OutputExistsError


def _tables():
    static = pd.DataFrame(
        {"patient_id": ["p1", "p2", "p3"], "sex": ["F", "M", "F"], "age": [30.0, 50.0, np.nan]}
    )
    visits = pd.DataFrame(
        {
            "patient_id": ["p1", "p1", "p2", "p3", "p3"],
            "visit_id": ["v1", "v2", "v3", "v4", "v5"],
            "time": pd.to_datetime(
                ["2020-01-01", "2020-03-01", "2020-02-01", "2019-01-01", "2019-06-01"]
            ),
            "died": [False, True, False, False, False],
        }
    )
    codes = pd.DataFrame(
        {
            "visit_id": ["v1", "v1", "v2", "v3", "v4", "v5", "v5"],
            "vocabulary": ["dx", "rx", "dx", "dx", "dx", "dx", "proc"],
            "code": ["401", "aspirin", "250", "401", "0389", "401", "36"],
        }
    )
    return static, visits, codes


def test_patients_view_holds_token_sets_in_time_order():
    static, visits, codes = _tables()
    c = Cohort(static, visits, codes.iloc[::-1])
    assert [p.patient_id for p in c.patients] == ["p1", "p2", "p3"]
    p1 = c.patients[0]
    assert [v.visit_id for v in p1.visits] == ["v1", "v2"]
    assert p1.visits[0].codes == frozenset({"dx:401", "rx:aspirin"})
    assert c.patients[2].visits[0].codes == frozenset({"dx:0389"})  # leading zero kept
    assert as_visit_sets(c)[0] == [frozenset({"dx:401", "rx:aspirin"}), frozenset({"dx:250"})]
    assert (c.n_patients, c.n_visits, c.n_codes) == (3, 5, 7)
    assert c.vocabularies == ["dx", "proc", "rx"]
    assert c.time_kind == "datetime"


def test_visits_of_different_patients_may_come_in_any_order():
    static, visits, codes = _tables()
    shuffled = visits.iloc[[3, 0, 2, 4, 1]]  # patients interleaved, each still in time order
    c = Cohort(static, shuffled, codes)
    assert c.visits["visit_id"].tolist() == ["v1", "v2", "v3", "v4", "v5"]


def test_numeric_ids_and_codes_become_clean_strings():
    static = pd.DataFrame({"patient_id": [1.0, 2.0]})
    visits = pd.DataFrame({"patient_id": [1, 2], "visit_id": [10, 20], "time": [0.5, 1.5]})
    codes = pd.DataFrame({"visit_id": [10.0, 20.0], "vocabulary": ["dx", "dx"], "code": [7, 8]})
    c = Cohort(static, visits, codes)
    assert c.static["patient_id"].tolist() == ["1", "2"]
    assert c.patients[1].visits[0].codes == frozenset({"dx:8"})
    assert c.time_kind == "numeric"


def test_summary_counts_are_those_of_the_tables():
    c = Cohort(*_tables())
    s = c.summary().set_index("statistic")["value"]
    assert s["patients"] == 3 and s["visits"] == 5 and s["code_rows"] == 7
    assert s["code_rows[dx]"] == 5 and s["distinct_codes[dx]"] == 3
    assert s["visits_per_patient_mean"] == pytest.approx(5 / 3)
    assert s["codes_per_visit_q100"] == 2
    assert s["share[sex=F]"] == pytest.approx(2 / 3)
    assert "share[age=30.0]" not in s.index  # numeric columns are not shares


def test_select_keeps_the_patients_visits_and_codes():
    c = Cohort(*_tables()).select(["p3", "p1"])
    assert c.static["patient_id"].tolist() == ["p1", "p3"]
    assert c.n_visits == 4 and set(c.codes["visit_id"]) == {"v1", "v2", "v4", "v5"}
    with pytest.raises(DataError, match="not in the cohort"):
        c.select(["p2"])


def test_parquet_round_trip_is_exact_and_refuses_to_overwrite(tmp_path):
    c = Cohort(*_tables())
    path = c.to_parquet(tmp_path / "cohort")
    meta = json.loads((path / "cohort.json").read_text())
    assert meta["format_version"] == 1 and meta["n_visits"] == 5
    back = Cohort.from_parquet(path)
    for name in ("static", "visits", "codes"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(c, name))
    with pytest.raises(OutputExistsError, match="exists"):
        c.to_parquet(path)
    c.select(["p1"]).to_parquet(path, overwrite=True)
    assert Cohort.from_parquet(path).n_patients == 1
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(OutputExistsError, match="not an earlier output"):
        c.to_parquet(tmp_path / "other", overwrite=True)


def test_from_parquet_refuses_missing_or_foreign_directories(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        Cohort.from_parquet(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="not a cohort directory"):
        Cohort.from_parquet(tmp_path / "empty")
    path = Cohort(*_tables()).to_parquet(tmp_path / "c")
    meta = json.loads((path / "cohort.json").read_text())
    (path / "cohort.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(InputFileError, match="format version 99"):
        Cohort.from_parquet(path)
    (path / "cohort.json").write_text(json.dumps(meta))
    (path / "codes.parquet").write_bytes(b"garbage")
    with pytest.raises(InputFileError, match=r"codes\.parquet"):
        Cohort.from_parquet(path)


# ------------------------------------------------------------------ bad input
def _patient_without_visits(s, v, c):
    return pd.concat([s, pd.DataFrame({"patient_id": ["p9"], "sex": ["M"]})]), v, c


def _empty_codes(s, v, c):
    bad = pd.DataFrame({"visit_id": ["v1", "v2"], "vocabulary": ["dx", "dx"], "code": ["", None]})
    return s, v, pd.concat([c, bad])


def _codes_of_unknown_visits(s, v, c):
    bad = pd.DataFrame({"visit_id": ["v77"], "vocabulary": ["dx"], "code": ["1"]})
    return s, v, pd.concat([c, bad])


def _missing_demographics(s, v, c):
    s = s.copy()
    s.loc[1, "sex"] = None
    return s, v, c


def _out_of_order(s, v, c):
    return s, v.iloc[[1, 0, 2, 3, 4]], c


def _duplicate_code_rows(s, v, c):
    return s, v, pd.concat([c, c.iloc[:2]])


def _duplicate_visit_rows(s, v, c):
    return s, pd.concat([v, v.iloc[[4]]]), c


def _duplicate_static_rows(s, v, c):
    return pd.concat([s, s.iloc[[0]]]), v, c


def _visits_of_unknown_patients(s, v, c):
    bad = pd.DataFrame(
        {"patient_id": ["p8"], "visit_id": ["v8"], "time": [pd.Timestamp("2020-01-01")]}
    )
    return s, pd.concat([v, bad]), c


def _visit_without_time(s, v, c):
    v = v.copy()
    v.loc[2, "time"] = pd.NaT
    return s, v, c


def _end_before_start(s, v, c):
    return s, v.assign(end_time=v["time"] - pd.Timedelta(days=1) * (v["visit_id"] == "v3")), c


def _times_as_text(s, v, c):
    return s, v.assign(time=v["time"].dt.strftime("%Y-%m-%d")), c


BAD_INPUTS = [
    # (make bad input, words of the raise message, check of the repaired cohort)
    (_patient_without_visits, "patients without visits: 1 (e.g. 'p9')", lambda c: c.n_patients == 3),
    (_empty_codes, "empty or missing codes", lambda c: c.n_codes == 7),
    (_codes_of_unknown_visits, "codes of visits not in the visits table: 1 (e.g. 'v77')",
     lambda c: "v77" not in set(c.codes["visit_id"])),
    (_missing_demographics, "missing demographics in static column 'sex': 1 (e.g. 'p2')",
     lambda c: c.static["sex"].tolist() == ["F", "unknown", "F"]),
    (_out_of_order, "out of time order within a patient: 1 (e.g. 'p1')",
     lambda c: c.visits["visit_id"].tolist()[:2] == ["v1", "v2"]),
    (_duplicate_code_rows, "exact duplicate rows in codes: 2", lambda c: c.n_codes == 7),
    (_duplicate_visit_rows, "exact duplicate rows in visits: 1 (e.g. 'p3')",
     lambda c: c.n_visits == 5),
    (_duplicate_static_rows, "exact duplicate rows in static: 1 (e.g. 'p1')",
     lambda c: c.n_patients == 3),
    (_visits_of_unknown_patients, "visits of patients not in static: 1 (e.g. 'p8')",
     lambda c: "v8" not in set(c.visits["visit_id"])),
    (_visit_without_time, "visits without a time: 1 (e.g. 'v3')",
     lambda c: c.n_patients == 2 and "v3" not in set(c.codes["visit_id"])),
    (_end_before_start, "end before they start",
     lambda c: c.visits.set_index("visit_id")["end_time"].isna()["v3"]),
    (_times_as_text, "visits.time has dtype object", lambda c: c.time_kind == "datetime"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "needle", "repaired"), BAD_INPUTS, ids=lambda x: "")
def test_bad_input_raises_one_line_or_is_repaired_and_logged(make, needle, repaired, caplog):
    tables = make(*_tables())
    with pytest.raises(DataError) as err:
        Cohort(*tables)
    message = str(err.value)
    assert needle in message and "\n" not in message
    assert "validate='repair'" in message
    with caplog.at_level(logging.INFO, logger="equisynth.data.cohort"):
        c = Cohort(*tables, validate="repair")
    assert repaired(c)
    assert c.repairs and any("Cohort repair" in r.message for r in caplog.records)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda s, v, c: (s, v.assign(visit_id="same"), c), "conflicting rows for the same visit_id"),
        (lambda s, v, c: (s.assign(patient_id="p1"), v, c), "conflicting rows for the same patient_id"),
        (lambda s, v, c: (s, v.drop(columns="time"), c), "lacks column(s) ['time']"),
        (lambda s, v, c: (s, v, c.assign(vocabulary="icd:9")), "must not contain ':'"),
        (lambda s, v, c: (s, v.assign(died=2), c), "visits.died must be 0/1"),
        (lambda s, v, c: (s, v, c.to_dict()), "must be a pandas DataFrame"),
        (lambda s, v, c: (s.iloc[:0], v, c), "visits of patients not in static"),
    ],
)  # fmt: skip
def test_unrepairable_input_is_refused_in_both_modes(change, needle):
    tables = change(*_tables())
    with pytest.raises(DataError, match=None) as err:
        Cohort(*tables)
    assert needle in str(err.value)
    if "not in static" not in needle:  # an empty static is refused too, just later
        with pytest.raises(DataError) as err2:
            Cohort(*tables, validate="repair")
        assert needle in str(err2.value)
    else:
        with pytest.raises(DataError, match="no patient with a visit"):
            Cohort(*tables, validate="repair")


def test_validate_option_is_checked():
    with pytest.raises(ConfigError, match="'raise' or 'repair'"):
        Cohort(*_tables(), validate="fix")


MALFORMED = {
    "empty": lambda df: df.iloc[:0],
    "lists": lambda df: df.assign(**{df.columns[-1]: [[1]] * len(df)}),
    "bools": lambda df: df.assign(**{df.columns[-1]: True}),
    "mixed": lambda df: df.assign(**{df.columns[-1]: [pd.Timestamp("2020-01-01"), 3] * (len(df) // 2) + [1] * (len(df) % 2)}),
    "all_nan": lambda df: df.assign(**{df.columns[-1]: np.nan}),
    "inf": lambda df: df.assign(**{df.columns[-1]: np.inf}),
    "category": lambda df: df.astype("category"),
    "bytes": lambda df: df.assign(**{df.columns[-1]: b"x"}),
    "duplicate_column": lambda df: pd.concat([df, df.iloc[:, -1:]], axis=1),
    "time_zone": lambda df: df.assign(**{df.columns[-1]: pd.Timestamp("2020-01-01", tz="Europe/Paris")}),
}  # fmt: skip


@pytest.mark.parametrize("table", [0, 1, 2])
@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_tables_give_equisynth_errors_not_pandas_tracebacks(table, kind):
    from equisynth.exceptions import EquisynthError

    for mode in ("raise", "repair"):
        tables = list(_tables())
        tables[table] = MALFORMED[kind](tables[table])
        try:
            c = Cohort(*tables, validate=mode)
            c.summary()
            assert len(c.patients) == c.n_patients
        except EquisynthError as err:
            assert "\n" not in str(err)


def test_from_parquet_repairs_a_hand_edited_directory_only_when_asked(tmp_path):
    path = Cohort(*_tables()).to_parquet(tmp_path / "c")
    codes = pd.read_parquet(path / "codes.parquet")
    pd.concat([codes, codes.iloc[[0]]]).to_parquet(path / "codes.parquet", index=False)
    with pytest.raises(DataError, match="duplicate"):
        Cohort.from_parquet(path)
    repaired = Cohort.from_parquet(path, validate="repair")
    assert len(repaired.codes) == len(codes)
    assert any("duplicate" in r for r in repaired.repairs)
