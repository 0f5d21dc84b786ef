"""SequenceTask: validation, subset/concat inverses, group labels."""

import numpy as np
import pandas as pd
import pytest

from equisynth.data.tasks import SequenceTask
from equisynth.exceptions import DataError


def _task(n=4):
    return SequenceTask(
        patient_ids=np.array([f"p{i}" for i in range(n)]),
        demographics=pd.DataFrame({"sex": ["F", "M"] * (n // 2), "race": ["a"] * n}),
        label=np.arange(n) % 2,
        visits=[[np.array([i % 3, 2]), np.array([1])] for i in range(n)],
        vocab=["dx:a", "dx:b", "rx:c"],
        task="t",
    )


def test_subset_then_concat_restores_the_task():
    t = _task(6)
    back = t.subset(np.arange(3)).concat(t.subset(np.arange(3, 6)))
    assert back.patient_ids.tolist() == t.patient_ids.tolist()
    assert back.label.tolist() == t.label.tolist()
    assert [[v.tolist() for v in p] for p in back.visits] == [
        [v.tolist() for v in p] for p in t.visits
    ]
    pd.testing.assert_frame_equal(back.demographics, t.demographics)


def test_visits_are_sorted_unique_and_groups_are_intersectional():
    t = SequenceTask(
        ["p"], pd.DataFrame({"s": ["F"], "r": ["b"]}), [1], [[[2, 0, 2]]], ["a", "b", "c"]
    )
    assert t.visits[0][0].tolist() == [0, 2]
    assert t.groups(["s", "r"]).tolist() == ["s=F & r=b"]
    assert t.visit_sets() == [[frozenset({"a", "c"})]]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"visits": [[]]}, "no visit"),
        ({"visits": [[[]]]}, "without codes"),
        ({"visits": [[[5]]]}, "outside the vocabulary"),
        ({"label": [2]}, "0/1"),
        ({"demographics": pd.DataFrame({"s": [None]})}, "missing values"),
        ({"label": [0, 1]}, "must have 1 patients"),
    ],
)
def test_bad_parts_are_refused_with_a_clear_message(change, needle):
    parts = {
        "patient_ids": ["p"],
        "demographics": pd.DataFrame({"s": ["F"]}),
        "label": [1],
        "visits": [[[0]]],
        "vocab": ["a"],
    }
    parts.update(change)
    with pytest.raises(DataError, match=needle):
        SequenceTask(**parts)


def test_groups_name_an_unknown_column():
    with pytest.raises(DataError, match="not among the demographics"):
        _task().groups(["age"])


# ----------------------------------------------------------------------------- make_task
import logging  # noqa: E402
from pathlib import Path  # noqa: E402

from equisynth.data.cohort import Cohort  # noqa: E402
from equisynth.data.tasks import make_task, task_summary  # noqa: E402
from equisynth.exceptions import ConfigError  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
T0 = pd.Timestamp("2100-01-01")


def _random_cohort(seed=0, n=60):
    """Patients with 1-5 visits; every visit has a marker code 'v:<visit_id>' (no time: known
    at discharge) and medications 'rx:<visit_id>_<k>' timed within the visit."""
    rng = np.random.default_rng(seed)
    static, visits, codes = [], [], []
    for i in range(n):
        pid = f"p{i}"
        static.append((pid, rng.choice(["F", "M"]), rng.choice(["a", "b", "c"])))
        t = T0 + pd.Timedelta(days=float(rng.uniform(0, 100)))
        k = int(rng.integers(1, 6))
        for j in range(k):
            vid = f"{pid}v{j}"
            stay = pd.Timedelta(hours=float(rng.uniform(2, 200)))
            died = j == k - 1 and rng.random() < 0.4
            death = t + stay if died else pd.NaT
            visits.append((pid, vid, t, t + stay, died, death))
            codes.append((vid, "v", vid, pd.NaT))
            for m in range(3):
                ct = t + pd.Timedelta(hours=float(rng.uniform(0, stay / pd.Timedelta(hours=1))))
                if m == 0 and rng.random() < 0.5:
                    ct = ct.normalize()  # a date without a time of day
                codes.append((vid, "rx", f"{vid}_{m}", ct))
            t = t + stay + pd.Timedelta(days=float(rng.choice([5.0, 20.0, 45.0, 200.0])))
    static = pd.DataFrame(static, columns=["patient_id", "sex", "race"])
    visits = pd.DataFrame(
        visits, columns=["patient_id", "visit_id", "time", "end_time", "died", "death_time"]
    )
    codes = pd.DataFrame(codes, columns=["visit_id", "vocabulary", "code", "time"])
    return Cohort(static, visits, codes)


def _origin(cohort):
    """token -> (patient, visit row, code time)."""
    v = cohort.visits.set_index("visit_id")
    out = {}
    for vid, voc, code, t in cohort.codes[["visit_id", "vocabulary", "code", "time"]].values:
        out[f"{voc}:{code}"] = (v.loc[vid, "patient_id"], v.loc[vid], t)
    return out


def _visits_of(cohort):
    return {p: g.reset_index(drop=True) for p, g in cohort.visits.groupby("patient_id")}


@pytest.mark.parametrize("task", ["mortality_next_visit", "readmission"])
def test_next_visit_tasks_use_only_visits_that_end_before_the_last(task):
    cohort = _random_cohort()
    t = make_task(cohort, task, demographics=["sex", "race"], min_code_count=1)
    origin, by_patient = _origin(cohort), _visits_of(cohort)
    assert t.n_patients == sum(len(g) >= 2 for g in by_patient.values())
    for pid, label, pv in zip(t.patient_ids, t.label, t.visits, strict=True):
        g = by_patient[pid]
        last = g.iloc[-1]
        for visit in pv:
            for c in visit:
                owner, row, _ = origin[t.vocab[c]]
                assert owner == pid and row["end_time"] < last["time"]
        assert len(pv) == int((g["end_time"] < last["time"]).sum())
        if task == "mortality_next_visit":
            assert label == int(last["died"])
        else:
            gap = last["time"] - g.loc[g["end_time"] < last["time"], "end_time"].max()
            assert label == int(gap <= pd.Timedelta(days=30))
    assert 0 < t.label.mean() < 1


def test_in_visit_mortality_uses_only_codes_known_in_the_first_day():
    cohort = _random_cohort(seed=1)
    t = make_task(cohort, "in_visit_mortality", demographics=["sex"], min_code_count=1)
    origin, by_patient = _origin(cohort), _visits_of(cohort)
    day = pd.Timedelta(hours=24)
    n_last_visit_codes = 0
    for pid, label, pv in zip(t.patient_ids, t.label, t.visits, strict=True):
        last = by_patient[pid].iloc[-1]
        outcome = last["death_time"] if last["died"] else last["end_time"]
        assert outcome > last["time"] + day  # the outcome is not known within the window
        assert label == int(last["died"])
        for visit in pv:
            for c in visit:
                token = t.vocab[c]
                owner, row, ct = origin[token]
                assert owner == pid
                if row.name == last["visit_id"]:  # codes of the fatal/last visit: early only
                    n_last_visit_codes += 1
                    assert token.startswith("rx:")  # never the discharge-time marker
                    known = ct + day if ct == ct.normalize() else ct
                    assert known <= last["time"] + day
                else:
                    assert row["end_time"] < last["time"]
    assert n_last_visit_codes > 0
    # single-visit patients are kept when they have early codes
    assert min(len(pv) for pv in t.visits) == 1
    prior_only = make_task(cohort, "in_visit_mortality", demographics=["sex"], min_code_count=1,
                           window_hours=0)  # fmt: skip
    for pid, pv in zip(prior_only.patient_ids, prior_only.visits, strict=True):
        last = by_patient[pid].iloc[-1]
        assert all(origin[prior_only.vocab[c]][1]["end_time"] < last["time"] for v in pv for c in v)
    assert prior_only.n_patients == sum(len(g) >= 2 for g in by_patient.values())


def test_a_custom_label_with_an_event_time_cuts_the_input_before_it():
    cohort = _random_cohort(seed=2)
    by_patient = _visits_of(cohort)
    event = {p: g["time"].iloc[len(g) // 2] + pd.Timedelta(hours=1) for p, g in by_patient.items()}

    def onset(c):
        return pd.DataFrame(
            {"label": [int(p[-1]) % 2 for p in event], "time": list(event.values())},
            index=list(event),
        )

    t = make_task(cohort, onset, demographics=["sex"], min_code_count=1)
    assert t.task == "onset"
    origin = _origin(cohort)
    for pid, label, pv in zip(t.patient_ids, t.label, t.visits, strict=True):
        assert label == int(pid[-1]) % 2
        for visit in pv:
            for c in visit:
                assert origin[t.vocab[c]][1]["end_time"] < event[pid]


def test_static_column_label_and_callable_series():
    cohort = _random_cohort(seed=3)
    static = cohort.static.assign(flag=(cohort.static["race"] == "a").astype(int))
    c2 = Cohort(static, cohort.visits, cohort.codes)
    t = make_task(c2, "flag", demographics=["sex"], min_code_count=1)
    flags = static.set_index("patient_id")["flag"]
    assert t.label.tolist() == flags.loc[t.patient_ids].tolist()
    t2 = make_task(c2, lambda c: c.static.set_index("patient_id")["flag"] == 1,
                   demographics=["sex"], min_code_count=1)  # fmt: skip
    assert t2.label.tolist() == t.label.tolist()
    with pytest.raises(DataError, match="must be 0/1"):
        make_task(c2, "race", demographics=["sex"])


def test_vocabulary_threshold_and_max_visits(caplog):
    static = pd.DataFrame({"patient_id": ["a", "b", "c"], "sex": ["F", "M", "F"]})
    visits = pd.DataFrame({
        "patient_id": ["a", "a", "a", "a", "b", "b", "c", "c"],
        "visit_id": ["a1", "a2", "a3", "a4", "b1", "b2", "c1", "c2"],
        "time": [0.0, 1.0, 2.0, 3.0, 0.0, 40.0, 0.0, 4.0],
    })  # fmt: skip
    codes = pd.DataFrame({
        "visit_id": ["a1", "a2", "a2", "a3", "a4", "b1", "c1"],
        "vocabulary": "dx",
        "code": ["common", "rare", "common", "common", "x", "common", "only_c"],
    })  # fmt: skip
    cohort = Cohort(static, visits, codes)
    with caplog.at_level(logging.INFO, logger="equisynth.data.tasks"):
        t = make_task(cohort, "readmission", demographics=["sex"], min_code_count=2)
    assert t.vocab == ["dx:common"]  # 'rare' and 'only_c' are in one patient each
    assert t.patient_ids.tolist() == ["a", "b"]  # c had only a rare code
    assert t.visit_counts().tolist() == [3, 1]  # a1, a2 (rare dropped), a3; a4 is the last
    assert "no input code seen in >= 2 patients': 1" in caplog.text
    t2 = make_task(cohort, "readmission", demographics=["sex"], min_code_count=2, max_visits=2)
    assert t2.visit_counts().tolist() == [2, 1]
    assert t2.label.tolist() == [1, 0]  # numeric times are days: a 3 - 2 <= 30, b 40 - 0 > 30
    with pytest.raises(DataError, match="keeps no patient"):
        make_task(cohort, "readmission", demographics=["sex"], min_code_count=10)


def test_make_task_refuses_bad_arguments():
    cohort = _random_cohort(seed=4, n=10)
    with pytest.raises(ConfigError, match="unknown task 'death'"):
        make_task(cohort, "death", demographics=["sex"])
    with pytest.raises(DataError, match=r"demographic column\(s\) \['age'\]"):
        make_task(cohort, "readmission", demographics=["age"])
    with pytest.raises(ConfigError, match="min_code_count"):
        make_task(cohort, "readmission", demographics=["sex"], min_code_count=0)
    no_death = Cohort(cohort.static, cohort.visits.drop(columns=["died"]), cohort.codes)
    with pytest.raises(DataError, match="'died' column in visits or a 'death_date'"):
        make_task(no_death, "mortality_next_visit", demographics=["sex"])
    no_end = Cohort(cohort.static, cohort.visits.drop(columns=["end_time"]), cohort.codes)
    with pytest.raises(DataError, match="window_hours=0"):
        make_task(no_end, "in_visit_mortality", demographics=["sex"])


def test_to_cohort_keeps_the_visit_sets_and_task_summary_counts():
    t = _task(4)
    both = t.concat(t.subset([0]))  # an oversampled copy repeats an id
    c = both.to_cohort()
    assert c.static["patient_id"].tolist() == ["p0", "p1", "p2", "p3", "p0~2"]
    assert [[v.codes for v in p.visits] for p in c.patients] == both.visit_sets()
    assert c.static["label"].tolist() == both.label.tolist()
    s = task_summary(t, ["sex", "race"])
    assert s.iloc[0].tolist() == ["all", "all", 4, 1.0, 2, 0.5]
    by_sex = s[s.grouping == "sex"].set_index("group")
    assert by_sex.loc["M", "prevalence"] == 1.0 and by_sex.loc["F", "n_positive"] == 0
    assert "sex x race" in set(s.grouping)


# ----------------------------------------------------------------------------- real data
def test_mimic3_mortality_next_visit_matches_the_admissions_table():
    if not (DATA / "mimic3_demo").is_dir():
        pytest.skip("mimic3_demo data not available")
    from equisynth.data.loaders import load_mimic3

    cohort = load_mimic3(DATA / "mimic3_demo")
    t = make_task(cohort, "mortality_next_visit", demographics=["ethnicity_group", "gender"])
    adm = pd.read_csv(DATA / "mimic3_demo" / "ADMISSIONS.csv", dtype=str).sort_values("admittime")
    multi = adm.groupby("subject_id").filter(lambda g: len(g) >= 2)
    last = multi.groupby("subject_id").tail(1).set_index("subject_id")
    assert sorted(t.patient_ids) == sorted(last.index)
    expected = (last.loc[t.patient_ids, "hospital_expire_flag"] == "1").astype(int)
    assert t.label.tolist() == expected.tolist()


def test_synthea_mortality_next_visit_counts_deaths_within_a_year():
    if not (DATA / "synthea_1k").is_dir():
        pytest.skip("synthea_1k data not available")
    from equisynth.data.loaders import load_synthea

    cohort = load_synthea(DATA / "synthea_1k")
    t = make_task(cohort, "mortality_next_visit", demographics=["race", "gender"])
    last = cohort.visits.groupby("patient_id")["time"].max()
    dd = cohort.static.set_index("patient_id")["death_date"]
    expected = dd.notna() & (dd <= last.reindex(dd.index) + pd.Timedelta(days=365))
    assert t.label.tolist() == expected.loc[t.patient_ids].astype(int).tolist()
    assert t.label.sum() < dd.notna().sum() <= t.label.sum() + 5
