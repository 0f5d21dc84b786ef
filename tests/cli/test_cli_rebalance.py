"""Success paths of rebalance, fit and sample."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from equisynth.cli.app import app
from equisynth.io import read_table

pytest.importorskip("equisynth.data.strata")

runner = CliRunner()


def _table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n, p=[0.3, 0.7])
    return pd.DataFrame(
        {
            "age": rng.integers(20, 80, n),
            "bmi": np.round(rng.normal(27, 4, n), 1),
            "sex": sex,
            "y": (rng.random(n) < np.where(sex == "F", 0.2, 0.4)).astype(int),
        }
    )


def _check_rebalanced(df: pd.DataFrame, out: pd.DataFrame) -> None:
    assert list(out.columns) == [*df.columns, "is_synthetic"]
    real = out.iloc[: len(df)]
    assert not real["is_synthetic"].any()
    pd.testing.assert_frame_equal(
        real.drop(columns="is_synthetic").reset_index(drop=True), df, check_dtype=False
    )
    synth = out.iloc[len(df) :]
    assert synth["is_synthetic"].all() and len(synth) > 0
    counts = out.groupby(["y", "sex"]).size()
    assert counts.min() == counts.max() == df.groupby(["y", "sex"]).size().max()


@pytest.mark.parametrize(("method", "ext"), [("random", ".csv"), ("smote", ".parquet")])
def test_rebalance_fills_strata(tmp_path, method, ext):
    df = _table()
    inp = tmp_path / f"in{ext}"
    df.to_csv(inp, index=False) if ext == ".csv" else df.to_parquet(inp, index=False)
    digest = hashlib.sha256(inp.read_bytes()).hexdigest()
    out = tmp_path / f"out{ext}"
    args = ["rebalance", str(inp), "--target", "y", "--sensitive", "sex", "--out", str(out)]
    result = runner.invoke(app, [*args, "--method", method, "--seed", "0"])
    assert result.exit_code == 0, result.output
    assert "added" in result.stderr
    _check_rebalanced(df, read_table(out))
    assert hashlib.sha256(inp.read_bytes()).hexdigest() == digest
    # an existing output needs --overwrite, and --overwrite works
    again = runner.invoke(app, [*args, "--method", method, "--seed", "1", "--quiet"])
    assert again.exit_code == 2
    again = runner.invoke(app, [*args, "--method", method, "--seed", "1", "--quiet", "--overwrite"])
    assert again.exit_code == 0
    # --quiet: no summary and no progress; only warnings about the data (here: a 5-row stratum)
    assert all(line.startswith("warning: ") for line in again.stderr.splitlines())
    _check_rebalanced(df, read_table(out))


def test_rebalance_mcrage_tiny(tmp_path):
    pytest.importorskip("equisynth.generators.tabular")
    df = _table()
    inp = tmp_path / "in.csv"
    df.to_csv(inp, index=False)
    out = tmp_path / "out.csv"
    args = ["rebalance", str(inp), "--target", "y", "--sensitive", "sex", "--out", str(out)]
    result = runner.invoke(
        app, [*args, "--method", "mcrage", "--n-iter", "30", "--seed", "0", "-q"]
    )
    assert result.exit_code == 0, result.output
    out_df = read_table(out)
    _check_rebalanced(df, out_df)
    synth = out_df[out_df["is_synthetic"]]
    assert set(synth["sex"]) <= {"F", "M"}
    assert synth["bmi"].between(df["bmi"].min(), df["bmi"].max()).all()


def test_fit_then_sample(tmp_path):
    pytest.importorskip("equisynth.generators.tabular")
    df = _table()
    inp = tmp_path / "in.csv"
    df.to_csv(inp, index=False)
    model = tmp_path / "model"
    fit = ["fit", str(inp), "--target", "y", "--sensitive", "sex", "--out", str(model)]
    result = runner.invoke(app, [*fit, "--n-iter", "30", "--seed", "0", "-q"])
    assert result.exit_code == 0, result.output
    assert (model / "config.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model")]

    one = tmp_path / "one.csv"
    args = ["sample", str(model), "--out", str(one), "--n", "7", "--seed", "0", "-q"]
    result = runner.invoke(app, [*args, "--condition", "y=1", "--condition", "sex=F"])
    assert result.exit_code == 0, result.output
    drawn = read_table(one)
    assert len(drawn) == 7 and list(drawn.columns) == list(df.columns)
    assert (drawn["sex"] == "F").all() and (drawn["y"] == 1).all()

    filled = tmp_path / "fill.parquet"
    args = ["sample", str(model), "--out", str(filled), "--fill", str(inp), "--seed", "0", "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    both = pd.concat([df, read_table(filled)])
    counts = both.groupby(["y", "sex"]).size()
    assert counts.min() == counts.max()


def test_sample_missing_model(tmp_path):
    pytest.importorskip("equisynth.generators.tabular")
    out = tmp_path / "o.csv"
    result = runner.invoke(
        app, ["sample", str(tmp_path / "nomodel"), "--out", str(out), "--n", "3"]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "nomodel" in result.stderr
    assert not out.exists()
