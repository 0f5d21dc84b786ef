"""Hostile longitudinal inputs for ``fit-ehr`` and ``sample-ehr`` (property-based).

``fit-ehr`` reads a cohort directory (``cohort:PATH``) whose three tables are written straight
with pandas, bypassing :class:`Cohort`'s checks, after 0-3 mutations of a valid cohort: missing
columns, missing / infinite / text times, conflicting duplicate ids, orphan visits and codes,
empty tables, one patient, one label class, thousands of codes, unicode and very long values,
clashing column names, a damaged ``cohort.json`` or Parquet file. Each case ends with exit code
0 and a loadable model (plus manifest), or exit code 2 and one ``error:`` line, no output and
no temporary file; input bytes are unchanged (``test_fuzz_cli.invoke`` checks all of it).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reliability_support import digest, fuzz
from test_fuzz_cli import invoke

from equisynth.data.cohort import COHORT_FORMAT_VERSION

TINY = ["--epochs", "1", "--d-model", "8", "--n-layers", "1", "--n-heads", "2",
        "--max-visits", "3", "--min-code-count", "1", "--seed", "0", "-q"]  # fmt: skip


def base_tables(n: int = 16, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    static = pd.DataFrame({"patient_id": [f"p{i}" for i in range(n)],
                           "grp": rng.choice(["A", "B"], n)})  # fmt: skip
    vrows, crows = [], []
    for i in range(n):
        k = int(rng.integers(2, 4))
        for j in range(k):
            vid = f"p{i}/v{j}"
            vrows.append((f"p{i}", vid, 10.0 * j, 5.0 + 10.0 * j, bool(j == k - 1 and i % 3 == 0)))
            crows += [(vid, "dx", str(c), 10.0 * j) for c in {int(rng.integers(0, 4)), j}]
    visits = pd.DataFrame(vrows, columns=["patient_id", "visit_id", "time", "end_time", "died"])
    codes = pd.DataFrame(crows, columns=["visit_id", "vocabulary", "code", "time"])
    return {"static": static, "visits": visits, "codes": codes}


REQUIRED = {"static": ["patient_id", "grp"], "visits": ["patient_id", "visit_id", "time"],
            "codes": ["visit_id", "vocabulary", "code"]}  # fmt: skip
HOSTILE_VALUES = [np.nan, None, np.inf, -np.inf, 1e308, "", " ", "é-患者-🙂", "x" * 5000, 0, True]


def mutate(tables: dict, name: str, rng: np.random.Generator) -> None:
    """Apply one named mutation in place (random details from ``rng``)."""
    s, v, c = tables["static"], tables["visits"], tables["codes"]
    table = rng.choice(["static", "visits", "codes"])
    df = tables[table]

    def some_rows(frame: pd.DataFrame) -> pd.Index:
        k = min(len(frame), int(rng.integers(1, 4)))
        return frame.index[rng.choice(len(frame), size=k, replace=False)]

    rows = some_rows(df)
    if name == "drop_column":
        tables[table] = df.drop(columns=[rng.choice(REQUIRED[table])])
    elif name == "hostile_value":
        col = rng.choice(list(df.columns))
        df[col] = df[col].astype(object)
        df.loc[rows, col] = HOSTILE_VALUES[int(rng.integers(len(HOSTILE_VALUES)))]
    elif name == "text_times":
        v["time"] = v["time"].astype(object)
        v.loc[some_rows(v), "time"] = rng.choice(["2020-01-01", "yesterday", "1e3"])
    elif name == "conflicting_duplicate":
        dup = df.iloc[[0]].astype(object)
        dup.iloc[0, -1] = "Z" if df.dtypes.iloc[-1] is np.dtype(object) else 99.0
        tables[table] = pd.concat([df, dup], ignore_index=True)
    elif name == "exact_duplicates":
        tables[table] = pd.concat([df, df.loc[rows]], ignore_index=True)
    elif name == "orphans":
        v["patient_id"] = v["patient_id"].astype(object)
        c["visit_id"] = c["visit_id"].astype(object)
        v.loc[v.index[0], "patient_id"] = "ghost"
        c.loc[c.index[-1], "visit_id"] = "ghost/v0"
    elif name == "empty_table":
        tables[table] = df.iloc[:0]
    elif name == "one_patient":
        keep = s["patient_id"].iloc[:1]
        tables["static"] = s[s["patient_id"].isin(keep)]
        tables["visits"] = v[v["patient_id"].isin(keep)]
        tables["codes"] = c[c["visit_id"].isin(tables["visits"]["visit_id"])]
    elif name == "one_label_class":
        v["died"] = bool(rng.integers(2))
    elif name == "died_not_boolean":
        v["died"] = rng.choice(["yes", "no", "2"], len(v))
    elif name == "thousands_of_codes":
        c["code"] = [f"c{i}" for i in range(len(c))]
        extra = c.loc[np.repeat(c.index[:1], 1500)].assign(code=[f"x{i}" for i in range(1500)])
        tables["codes"] = pd.concat([c, extra], ignore_index=True)
    elif name == "many_demographic_levels":
        s["grp"] = [f"level-{i}-" + "é" * int(rng.integers(0, 300)) for i in range(len(s))]
    elif name == "numeric_ids":
        s["patient_id"] = s["patient_id"].astype(str).str.lstrip("p").astype(int)
        v["patient_id"] = v["patient_id"].astype(str).str.lstrip("p").astype(int)
    elif name == "clashing_columns":
        tables["static"] = s.assign(**{str(rng.choice(["label", "is_synthetic"])): 1})
    elif name == "datetime_times" and pd.api.types.is_numeric_dtype(v["time"]):
        v["time"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(v["time"], unit="D")


MUTATIONS = ("drop_column", "hostile_value", "text_times", "conflicting_duplicate",
             "exact_duplicates", "orphans", "empty_table", "one_patient", "one_label_class",
             "died_not_boolean", "thousands_of_codes", "many_demographic_levels", "numeric_ids",
             "clashing_columns", "datetime_times")  # fmt: skip
DAMAGE = (None, None, None, "garbage_json", "wrong_version", "missing_parquet", "garbage_parquet")


def write_cohort_dir(directory, tables: dict, damage: str | None) -> None:
    """The tables as a cohort directory, written without validation."""
    directory.mkdir()
    meta = {"format": "equisynth-cohort", "format_version": COHORT_FORMAT_VERSION}
    if damage == "wrong_version":
        meta["format_version"] = 99
    text = "{not json" if damage == "garbage_json" else json.dumps(meta)
    (directory / "cohort.json").write_text(text)
    for name, df in tables.items():
        path = directory / f"{name}.parquet"
        try:
            df.to_parquet(path, index=False)
        except Exception:  # pyarrow refuses mixed object columns: store them as text
            df.astype({c: str for c in df.columns if df[c].dtype == object}).to_parquet(
                path, index=False
            )
    if damage == "missing_parquet":
        (directory / "codes.parquet").unlink()
    elif damage == "garbage_parquet":
        (directory / "visits.parquet").write_bytes(b"PAR1 this is not parquet")


@fuzz(25)
@given(
    mutations=st.lists(st.sampled_from(MUTATIONS), max_size=3),
    damage=st.sampled_from(DAMAGE),
    task=st.sampled_from(["mortality_next_visit", "readmission", "in_visit_mortality"]),
    seed=st.integers(0, 2**16),
)
def test_fuzz_fit_ehr_malformed_cohort(tmp_path_factory, mutations, damage, task, seed):
    rng = np.random.default_rng(seed)
    tables = base_tables()
    for name in mutations:
        try:
            mutate(tables, name, rng)
        except (KeyError, IndexError, ValueError, TypeError):
            pass  # the mutation does not apply to the tables as mutated so far (e.g. no rows left)
    work = tmp_path_factory.mktemp("fit-ehr")
    data = work / "cohort"
    write_cohort_dir(data, tables, damage)
    out = work / "model"
    args = ["fit-ehr", "--data", f"cohort:{data}", "--task", task, "--demographic", "grp",
            "--window-hours", "1", "--out", out, *TINY]  # fmt: skip
    if invoke("cli fit-ehr", args, [data], out) == 0:
        from equisynth.generators.ehr import HALOGenerator

        gen = HALOGenerator.load(out)
        assert gen.layout_.columns == ["grp"] and gen.n_patients_ >= 1
        assert gen.sample(3, random_state=0).n_patients == 3


@pytest.fixture(scope="module")
def ehr_model(tmp_path_factory):
    work = tmp_path_factory.mktemp("ehr-model")
    data = work / "cohort"
    write_cohort_dir(data, base_tables(), None)
    out = work / "model"
    args = ["fit-ehr", "--data", f"cohort:{data}", "--task", "mortality_next_visit",
            "--demographic", "grp", "--out", out, *TINY]  # fmt: skip
    assert invoke("cli fit-ehr", args, [data], out) == 0
    return out


CONDITION_TEXT = ["grp=A", "grp=B", "grp=C", "grp=", "=A", "grp", "grp=A=B", "label=1", "grp=a",
                  "grp= A", "grp=A "]  # fmt: skip
CONDITION = st.one_of(st.sampled_from(CONDITION_TEXT), st.text(max_size=8))


@fuzz(20)
@given(
    n=st.sampled_from([1, 4, 300]),
    conditions=st.lists(CONDITION, max_size=3),
    label=st.sampled_from([None, 0, 1, 2, -1]),
    ext=st.sampled_from(["", ".csv", ".parquet"]),
)
def test_fuzz_sample_ehr(tmp_path_factory, ehr_model, n, conditions, label, ext):
    out = tmp_path_factory.mktemp("sample-ehr") / f"synth{ext}"
    before = digest(ehr_model)
    args = ["sample-ehr", ehr_model, "--n", n, "--out", out, "--seed", "1"]
    for item in conditions:
        args += ["--condition", item]
    args += [] if label is None else ["--label", label]
    code = invoke("cli sample-ehr", args, [], out)
    assert digest(ehr_model) == before
    if code == 0 and ext:
        table = pd.read_csv(out) if ext == ".csv" else pd.read_parquet(out)
        assert table["patient_id"].nunique() == n
        if label is not None:
            assert (table["label"] == label).all()
