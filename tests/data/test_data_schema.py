"""Schema inference: kinds, ranges, errors, real data."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from equisynth.data.schema import TableSchema, infer_schema
from equisynth.exceptions import SchemaError

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def test_kinds_and_ranges():
    df = pd.DataFrame(
        {
            "x": [0.5, 1.25, 2.125, 3.0, 4.0, 5.0, 6.0],
            "n": [1, 2, 3, 4, 5, 6, 70],
            "nf": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0],
            "b": [True, False] * 3 + [True],
            "c": list("abcabca"),
            "few": [0, 1, 2, 0, 1, 2, 0],
        }
    )
    s = infer_schema(df)
    assert [c.kind for c in s.columns] == [
        "continuous",
        "integer",
        "integer",
        "binary",
        "categorical",
        "categorical",
    ]
    assert s["x"].decimals == 3 and s["x"].minimum == 0.5 and s["x"].maximum == 6.0
    assert s["nf"].has_missing and not s["n"].has_missing
    assert s["c"].categories == ("a", "b", "c")
    assert TableSchema.from_dict(s.to_dict()) == s


def test_mixed_type_categories_sort():
    s = infer_schema(pd.DataFrame({"m": [1, "a", 2.5, "b", 1]}, dtype=object))
    assert s["m"].categories == (1, 2.5, "a", "b")


@pytest.mark.parametrize(
    ("df", "overrides", "needle"),
    [
        (pd.DataFrame(), None, "empty"),
        (pd.DataFrame({"a": [np.nan, np.nan]}), None, "'a'"),
        (pd.DataFrame({"v": ["1.5", "abc", "2"]}), {"v": "continuous"}, "'abc'"),
        (pd.DataFrame({"v": [1, 2]}), {"w": "integer"}, "'w'"),
        (pd.DataFrame({"v": [1, 2]}), {"v": "fancy"}, "'fancy'"),
        (pd.DataFrame([[1, 2]], columns=["d", "d"]), None, "'d'"),
    ],
)
def test_errors_name_the_column(df, overrides, needle):
    with pytest.raises(SchemaError, match=needle):
        infer_schema(df, overrides)


def test_many_categories_warn():
    df = pd.DataFrame({"code": [f"c{i}" for i in range(60)]})
    with pytest.warns(UserWarning, match="'code'"):
        assert infer_schema(df)["code"].kind == "categorical"


def _read(name, nrows=None):
    folder = DATA / name
    if not folder.exists():
        pytest.skip(f"shared data folder {folder} absent")
    csv = next(p for p in sorted(folder.glob("*.csv*")) if "IDs_mapping" not in p.name)
    df = pd.read_csv(csv, keep_default_na=False, nrows=nrows, low_memory=False)
    df = df.mask(df.astype(str) == "?")
    return df.dropna(axis=1, how="all").infer_objects()


def test_real_patient_treatment():
    df = _read("patient_treatment")
    s = infer_schema(df)
    kinds = {c.name: c.kind for c in s.columns}
    assert "continuous" in kinds.values() or "integer" in kinds.values()
    assert "binary" in kinds.values()


def test_real_diabetes130():
    df = _read("diabetes130", nrows=5000)
    with pytest.warns(UserWarning, match="diag_1"):
        s = infer_schema(df)
    kinds = {c.name: c.kind for c in s.columns}
    assert kinds["race"] == "categorical" and s["race"].has_missing
    assert kinds["num_lab_procedures"] == "integer"
    assert kinds["gender"] in ("binary", "categorical")
