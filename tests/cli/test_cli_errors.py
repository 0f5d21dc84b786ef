"""Bad inputs: exit code 2, one line naming the problem, no traceback, input untouched, no output."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from equisynth.cli.app import app

runner = CliRunner()


def _table(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(20, 80, n),
            "bmi": np.round(rng.normal(27, 4, n), 1),
            "sex": rng.choice(["F", "M"], n),
            "y": (rng.random(n) < 0.3).astype(int),
        }
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run_bad(tmp_path: Path, inp: Path, *extra: str, expect: str, target: str = "y") -> None:
    out = tmp_path / "out.csv"
    before = _digest(inp) if inp.is_file() else None
    args = ["rebalance", str(inp), "--target", target, "--sensitive", "sex", "--out", str(out)]
    args += ["--method", "random", "--seed", "0", *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error: "), err
    assert "\n" not in err, err
    assert "Traceback" not in result.output
    assert expect in err, err
    if before is not None:
        assert _digest(inp) == before
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.csv")]


def _write(tmp_path: Path, df: pd.DataFrame, name: str = "in.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def test_missing_column(tmp_path):
    inp = _write(tmp_path, _table())
    _run_bad(tmp_path, inp, "--sensitive", "race", expect="'race'")


def test_missing_target(tmp_path):
    inp = _write(tmp_path, _table())
    _run_bad(tmp_path, inp, expect="'outcome'", target="outcome")


def test_target_with_one_class(tmp_path):
    df = _table()
    df["y"] = 1
    _run_bad(tmp_path, _write(tmp_path, df), expect="single class")


def test_nan_in_target(tmp_path):
    df = _table().astype({"y": float})
    df.loc[3, "y"] = np.nan
    _run_bad(tmp_path, _write(tmp_path, df), expect="target 'y' has 1 missing")


def test_nan_in_sensitive(tmp_path):
    df = _table()
    df.loc[[1, 2], "sex"] = None
    _run_bad(tmp_path, _write(tmp_path, df), expect="sensitive column 'sex' has 2 missing")


def test_single_stratum(tmp_path):
    df = _table()
    df["y"] = 0
    df["sex"] = "F"
    _run_bad(tmp_path, _write(tmp_path, df), expect="only one stratum")


def test_empty_file_zero_bytes(tmp_path):
    inp = tmp_path / "in.csv"
    inp.write_bytes(b"")
    _run_bad(tmp_path, inp, expect="empty")


def test_header_only_file(tmp_path):
    inp = tmp_path / "in.csv"
    inp.write_text("age,bmi,sex,y\n")
    _run_bad(tmp_path, inp, expect="no data rows")


def test_nonexistent_file(tmp_path):
    _run_bad(tmp_path, tmp_path / "nope.csv", expect="does not exist")


def test_garbage_parquet(tmp_path):
    inp = tmp_path / "in.parquet"
    inp.write_bytes(np.random.default_rng(0).bytes(300))
    _run_bad(tmp_path, inp, expect="cannot read")


def test_unknown_extension(tmp_path):
    inp = tmp_path / "in.xlsx"
    inp.write_bytes(b"abc")
    _run_bad(tmp_path, inp, expect=".xlsx")


def test_all_missing_column(tmp_path):
    df = _table()
    df["notes"] = np.nan
    _run_bad(tmp_path, _write(tmp_path, df), expect="'notes' has only missing values")


def test_text_in_numeric_column(tmp_path):
    df = _table().astype({"bmi": object})
    df.loc[5, "bmi"] = "abc"
    _run_bad(tmp_path, _write(tmp_path, df), "--numeric", "bmi", expect="'bmi'")


def test_bad_strategy(tmp_path):
    _run_bad(tmp_path, _write(tmp_path, _table()), "--strategy", "2.5", expect="(0, 1]")


def test_existing_output_is_kept(tmp_path):
    inp = _write(tmp_path, _table())
    out = tmp_path / "out.csv"
    out.write_text("keep me\n")
    args = ["rebalance", str(inp), "--target", "y", "--sensitive", "sex", "--out", str(out)]
    result = runner.invoke(app, [*args, "--method", "random"])
    assert result.exit_code == 2
    assert "exists; pass --overwrite" in result.stderr
    assert out.read_text() == "keep me\n"


def test_unexpected_error_is_one_line_exit_1(tmp_path, monkeypatch):
    import equisynth.cli.rebalance as mod

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(mod, "run_rebalance", boom)
    monkeypatch.delenv("EQUISYNTH_DEBUG", raising=False)
    inp = _write(tmp_path, _table())
    out = tmp_path / "o.csv"
    args = ["rebalance", str(inp), "--target", "y", "--sensitive", "sex", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "internal error (RuntimeError: kaboom)" in result.stderr
    assert "Traceback" not in result.output


def test_usage_error_exits_2(tmp_path):
    result = runner.invoke(app, ["rebalance", "x.csv", "--target", "y"])
    assert result.exit_code == 2


@pytest.mark.parametrize("cmd", ["rebalance", "fit", "sample"])
def test_help(cmd):
    result = runner.invoke(app, [cmd, "--help"])
    assert result.exit_code == 0
    assert "--out" in result.output


def test_fit_refuses_existing_model_dir_before_training(tmp_path):
    inp = _write(tmp_path, _table())
    model = tmp_path / "model"
    model.mkdir()
    (model / "keep.txt").write_text("x")
    args = ["fit", str(inp), "--target", "y", "--sensitive", "sex", "--out", str(model)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "exists; pass --overwrite" in result.stderr
    assert [p.name for p in model.iterdir()] == ["keep.txt"]
