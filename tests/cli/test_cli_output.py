"""Output assembly of the CLI, independent of the resampling internals (a fake sampler)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
from typer.testing import CliRunner

import equisynth.resampling as resampling
from equisynth.cli.app import app
from equisynth.io import read_table

runner = CliRunner()


class _DuplicateMinority:
    """Appends copies of the rows of the smallest (y, sex) stratum until it matches the largest."""

    def __init__(self, **kw):
        self.kw = kw

    def fit_resample(self, X, y):
        key = pd.Series(list(zip(y, X["sex"], strict=True)), index=X.index)
        counts = key.value_counts()
        small = counts.idxmin()
        extra = X[key == small].sample(counts.max() - counts.min(), replace=True, random_state=0)
        X_res = pd.concat([X, extra], ignore_index=True)
        y_res = pd.concat([y, y.loc[extra.index]], ignore_index=True)
        self.synthetic_mask_ = np.r_[np.zeros(len(X), bool), np.ones(len(extra), bool)]
        return X_res, y_res


def test_real_rows_first_and_unchanged(tmp_path, monkeypatch):
    monkeypatch.setattr(resampling, "make_resampler", lambda method, **kw: _DuplicateMinority(**kw))
    df = pd.DataFrame(
        {
            "y": [0, 0, 0, 1, 0, 0, 1, 0],
            "w": [0.1, 1.25, 3.0, 0.123456789012, 2.5, 7.0, 1.0, 2.0],
            "sex": ["F", "M", "F", "M", "M", "F", "F", "M"],
        }
    )
    inp = tmp_path / "in.csv"
    df.to_csv(inp, index=False)
    raw = inp.read_bytes()
    out = tmp_path / "out.csv"
    args = ["rebalance", str(inp), "--target", "y", "--sensitive", "sex", "--out", str(out)]
    result = runner.invoke(app, [*args, "--method", "random"])
    assert result.exit_code == 0, result.output
    got = read_table(out)
    assert list(got.columns) == ["y", "w", "sex", "is_synthetic"]
    pd.testing.assert_frame_equal(got.iloc[:8, :3], df, check_exact=True)
    assert got["is_synthetic"].tolist() == [False] * 8 + [True] * (len(got) - 8)
    assert inp.read_bytes() == raw
    assert "before" in result.stderr and "after" in result.stderr


def test_python_dash_m_help():
    proc = subprocess.run(
        [sys.executable, "-m", "equisynth", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "rebalance" in proc.stdout


def test_help_does_not_import_torch():
    code = "import sys, equisynth.cli.app; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False"


def test_help_texts_are_printed_verbatim():
    """Help is plain text: a bracketed extra such as equisynth[ray] must not vanish as markup."""
    result = runner.invoke(app, ["experiment", "mcrage", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "equisynth[ray]" in result.output
