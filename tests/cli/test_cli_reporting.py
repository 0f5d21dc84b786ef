"""What the CLI reports besides errors: empty and small strata, suspicious columns, --help."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from equisynth.cli.app import app
from equisynth.io import read_table

runner = CliRunner()


def _table(n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = np.array(["F"] * 30 + ["M"] * (n - 30))
    y = np.r_[np.zeros(24, int), np.ones(6, int), rng.integers(0, 2, n - 30)]
    return pd.DataFrame({"age": rng.integers(20, 80, n), "sex": sex, "y": y})


def _rebalance(tmp_path, df, *extra):
    inp = tmp_path / "in.csv"
    df.to_csv(inp, index=False)
    out = tmp_path / "out.csv"
    args = ["rebalance", str(inp), "--target", "y", "--sensitive", "sex", "--out", str(out)]
    return runner.invoke(app, [*args, "--method", "random", "--seed", "0", *extra]), out


def test_small_stratum_is_one_warning_line_with_its_count(tmp_path):
    result, out = _rebalance(tmp_path, _table(), "--quiet")
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("warning: ")]
    assert lines == [
        "warning: stratum (y=1, sex='F') has only 6 rows (fewer than 10); synthetic rows for "
        "it rest on very few real rows"
    ]
    assert out.exists()


def test_empty_stratum_is_reported_and_skipped(tmp_path):
    df = _table()
    df = df[~((df["sex"] == "M") & (df["y"] == 1))]
    result, out = _rebalance(tmp_path, df)
    assert result.exit_code == 0, result.output
    assert "warning: 1 stratum/strata with no rows skipped" in result.stderr
    assert "(y=1, sex='M')" in result.stderr
    res = read_table(out)
    assert not ((res["sex"] == "M") & (res["y"] == 1)).any()
    counts = res.groupby(["y", "sex"]).size()
    assert counts.nunique() == 1 and len(counts) == 3


def test_mostly_numeric_text_column_is_warned_about(tmp_path):
    df = _table().astype({"age": object})
    df.loc[4, "age"] = "unknown"
    result, _ = _rebalance(tmp_path, df, "-q")
    assert result.exit_code == 0, result.output
    assert "warning: column 'age' is mostly numeric but has 1 text value(s) such as 'unknown'" in (
        result.stderr
    )


def test_smote_first_needs_mcrage(tmp_path):
    result, out = _rebalance(tmp_path, _table(), "--smote-first")
    assert result.exit_code == 2
    assert (
        result.stderr.strip() == "error: --smote-first needs --method mcrage, got --method random"
    )
    assert not out.exists()


@pytest.mark.parametrize("name", sorted(c.name for c in app.registered_commands))
def test_every_command_has_help(name):
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and "--help" in result.output


def test_top_level_help_lists_the_core_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("rebalance", "fit", "sample"):
        assert name in result.output
