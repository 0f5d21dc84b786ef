"""Shared pieces of the scale-out tests: a small mixed table and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest


def make_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Outcome, sex, an integer and a skewed decimal column with missing values."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "y": rng.choice(["no", "yes"], n, p=[0.7, 0.3]),
            "sex": rng.choice(["F", "M"], n),
            "age": rng.integers(18, 90, n),
            "x": np.round(rng.lognormal(size=n), 3),
        }
    )
    df.loc[rng.random(n) < 0.1, "x"] = np.nan
    return df


@pytest.fixture
def table() -> pd.DataFrame:
    return make_table()


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m equisynth ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "equisynth", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, EQUISYNTH_DEBUG="1"),
        **kwargs,
    )


def cli_popen(*args: str, **kwargs) -> subprocess.Popen:
    """Start ``python -m equisynth ARGS`` in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "equisynth", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, EQUISYNTH_DEBUG="1"),
        **kwargs,
    )
