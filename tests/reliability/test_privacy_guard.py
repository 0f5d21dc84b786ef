"""``rebalance`` warns about synthetic rows that copy a real patient; ``--drop-copies`` removes them."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reliability_support import fuzz, record
from typer.testing import CliRunner

from equisynth.cli._copies import exact_copy_mask, guard_copies
from equisynth.cli.app import app
from equisynth.evaluation.quality.privacy import drop_close_copies
from equisynth.io import read_table

runner = CliRunner()


def _men(rng: np.random.Generator, n: int = 60) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": np.round(rng.normal(50, 10, n), 2),
            "c": rng.choice(["a", "b"], n),
            "s": ["M"] * n,
            "y": (np.arange(n) % 2).astype(int),
        }
    )


def _with_identical_minority(tmp_path: Path) -> Path:
    """The (y=1, s=F) stratum is 6 copies of one patient: SMOTE can only copy that patient."""
    df = _men(np.random.default_rng(0))
    minority = pd.DataFrame({"x": [41.5] * 6, "c": ["a"] * 6, "s": ["F"] * 6, "y": [1] * 6})
    majority_f = df.iloc[:30].assign(s="F", y=0)
    path = tmp_path / "in.csv"
    pd.concat([df, majority_f, minority], ignore_index=True).to_csv(path, index=False)
    return path


def _copies(real: pd.DataFrame, synth: pd.DataFrame) -> int:
    cols = list(real.columns)
    return len(synth[cols].merge(real[cols].drop_duplicates(), on=cols, how="inner"))


def _rebalance(inp: Path, out: Path, *extra: str):
    args = ["rebalance", inp, "--target", "y", "--sensitive", "s", "--out", out, "--seed", "0"]
    return runner.invoke(app, [str(a) for a in [*args, "-q", *extra]])


def test_warns_about_exact_copies(tmp_path, caplog):
    inp = _with_identical_minority(tmp_path)
    out = tmp_path / "out.csv"
    with caplog.at_level(logging.WARNING):
        result = _rebalance(inp, out, "--method", "smote")
    assert result.exit_code == 0, result.output
    got = read_table(out)
    real, synth = got[~got["is_synthetic"]], got[got["is_synthetic"]]
    n_copies = _copies(real.drop(columns="is_synthetic"), synth)
    assert n_copies > 0
    assert f"{n_copies} of {len(synth)} synthetic rows" in caplog.text
    assert "exactly copy a real row" in caplog.text and "--drop-copies" in caplog.text


def test_drop_copies_removes_them_and_keeps_the_rest(tmp_path, caplog):
    inp = _with_identical_minority(tmp_path)
    kept_out, all_out = tmp_path / "kept.csv", tmp_path / "all.csv"
    assert _rebalance(inp, all_out, "--method", "smote").exit_code == 0
    with caplog.at_level(logging.WARNING):
        result = _rebalance(inp, kept_out, "--method", "smote", "--drop-copies")
    assert result.exit_code == 0, result.output
    every, kept = read_table(all_out), read_table(kept_out)
    real = read_table(inp)
    pd.testing.assert_frame_equal(kept[~kept["is_synthetic"]].drop(columns="is_synthetic"), real)
    synth_all, synth_kept = every[every["is_synthetic"]], kept[kept["is_synthetic"]]
    assert _copies(real, synth_kept) == 0
    # exactly the copies were dropped: the same seed gives the same rows, minus the copies
    assert len(synth_kept) == len(synth_all) - _copies(real, synth_all)
    assert "dropped" in caplog.text and "--drop-copies" in caplog.text


def test_drop_copies_with_random_oversampling_is_refused(tmp_path):
    inp = _with_identical_minority(tmp_path)
    out = tmp_path / "out.csv"
    result = _rebalance(inp, out, "--method", "random", "--drop-copies")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: --drop-copies with --method random")
    assert not out.exists()


def test_random_oversampling_warning_says_why(tmp_path, caplog):
    inp = _with_identical_minority(tmp_path)
    with caplog.at_level(logging.WARNING):
        result = _rebalance(inp, tmp_path / "out.csv", "--method", "random")
    assert result.exit_code == 0
    assert "duplicates real rows by design" in caplog.text


@pytest.mark.parametrize("drop", [False, True])
def test_guard_only_flags_exact_copies(caplog, drop):
    real = pd.DataFrame(
        {"x": [1.0, 2.5, np.nan], "c": ["a", "b", "a"], "y": [0, 1, 1], "b": [True, False, True]}
    )
    synth = pd.DataFrame(
        {
            "x": [1.0, 2.51, np.nan, 2.5],
            "c": ["a", "b", "a", "a"],
            "y": [0, 1, 1, 1],
            "b": [True, False, True, False],
        }
    )
    with caplog.at_level(logging.WARNING):
        out = guard_copies(real, synth, drop=drop)
    # row 0 and row 2 (missing x in both) are copies; 2.51 and a changed label are not
    assert "2 of 4 synthetic rows" in caplog.text
    expected = synth.iloc[[1, 3]] if drop else synth
    pd.testing.assert_frame_equal(out, expected.reset_index(drop=True))


def test_drop_close_copies_finds_every_exact_copy_with_many_features():
    """Regression: with ~800 one-hot features the neighbour search's distance shortcut put
    exact copies at ~1e-7 > COPY_TOL, so 25 of these 300 copies were missed."""
    rng = np.random.default_rng(0)
    n = 600
    real = pd.DataFrame(
        {
            "code": rng.choice([f"c{i}" for i in range(400)], n),
            "code2": rng.choice([f"d{i}" for i in range(400)], n),
            "x": rng.normal(0, 1, n),
            "big": rng.normal(0, 1, n) * 1e3,
            "y": rng.integers(0, 2, n),
        }
    )
    synth = real.sample(300, random_state=1).reset_index(drop=True)
    _, dropped = drop_close_copies(synth, real)
    assert dropped.all()
    assert exact_copy_mask(real, synth).all()


VALUES = {
    "x": st.sampled_from([0.0, 1.5, 2.25, -3.0, np.nan]),
    "k": st.sampled_from([0, 1, 7]),
    "c": st.sampled_from(["a", "b", "1", None]),
    "f": st.booleans(),
}


@fuzz(40)
@given(
    rows=st.lists(st.fixed_dictionaries(VALUES), min_size=2, max_size=12),
    extra=st.lists(st.fixed_dictionaries(VALUES), min_size=1, max_size=12),
    n_copied=st.integers(0, 6),
)
def test_hash_guard_agrees_with_drop_close_copies(rows, extra, n_copied):
    """The fast exact-copy check flags the same rows as drop_close_copies(threshold=0)."""
    real = pd.DataFrame(rows)
    synth = pd.concat([real.iloc[:n_copied], pd.DataFrame(extra)], ignore_index=True)
    if real["x"].notna().all():  # drop_close_copies imputes NaN in a column without NaN
        synth["x"] = synth["x"].fillna(0.5)
    _, dropped = drop_close_copies(synth, real, threshold=0.0)
    np.testing.assert_array_equal(exact_copy_mask(real, synth), dropped)
    assert exact_copy_mask(real, synth)[: min(n_copied, len(real))].all()
    record("guard: hash vs drop_close_copies", "result")


def _with_varied_minority(tmp_path: Path) -> Path:
    """The (y=1, s=F) stratum has 8 different patients: SMOTE interpolates between them."""
    rng = np.random.default_rng(1)
    df = _men(rng)
    minority = pd.DataFrame(
        {"x": np.round(rng.normal(45, 8, 8), 2), "c": ["a"] * 8, "s": ["F"] * 8, "y": [1] * 8}
    )
    path = tmp_path / "in.csv"
    pd.concat([df, df.iloc[:30].assign(s="F", y=0), minority], ignore_index=True).to_csv(
        path, index=False
    )
    return path


def test_drop_closer_than_removes_exactly_the_rows_within_the_distance(tmp_path, caplog):
    inp = _with_varied_minority(tmp_path)
    all_out, zero_out, near_out = (tmp_path / f"{n}.csv" for n in ("all", "zero", "near"))
    assert _rebalance(inp, all_out, "--method", "smote").exit_code == 0
    real = read_table(inp)
    every = read_table(all_out)
    synth_all = every[every["is_synthetic"]].drop(columns="is_synthetic").reset_index(drop=True)
    # distance 0 drops the exact copies only, as --drop-copies does
    assert _rebalance(inp, zero_out, "--method", "smote", "--drop-closer-than", "0").exit_code == 0
    zero = read_table(zero_out)
    assert len(zero[zero["is_synthetic"]]) == len(synth_all) - _copies(real, synth_all)
    # a larger distance drops exactly the rows that drop_close_copies flags at that distance
    for threshold in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5):
        _, flagged = drop_close_copies(synth_all, real, threshold=threshold)
        if 0 < flagged.sum() < len(synth_all):
            break
    assert 0 < flagged.sum() < len(synth_all)
    with caplog.at_level(logging.WARNING):
        result = _rebalance(
            inp, near_out, "--method", "smote", "--drop-closer-than", f"{threshold}"
        )
    assert result.exit_code == 0, result.output
    near = read_table(near_out)
    pd.testing.assert_frame_equal(near[~near["is_synthetic"]].drop(columns="is_synthetic"), real)
    kept = near[near["is_synthetic"]].drop(columns="is_synthetic").reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, synth_all[~flagged].reset_index(drop=True))
    assert f"dropped {int(flagged.sum())} of {len(synth_all)} synthetic rows" in caplog.text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ("--method", "random", "--drop-closer-than", "0.5"),
            "--drop-closer-than with --method random",
        ),
        (("--method", "smote", "--drop-closer-than", "-1"), "finite distance >= 0"),
        (("--method", "smote", "--drop-closer-than", "inf"), "finite distance >= 0"),
    ],
)
def test_drop_closer_than_refuses_bad_values(tmp_path, extra, message):
    inp = _with_identical_minority(tmp_path)
    before = inp.read_bytes()
    out = tmp_path / "out.csv"
    result = _rebalance(inp, out, *extra)
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error:") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and inp.read_bytes() == before


def test_drop_closer_than_zero_equals_drop_copies(tmp_path):
    inp = _with_identical_minority(tmp_path)  # SMOTE can only copy the minority patient
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert _rebalance(inp, a, "--method", "smote", "--drop-copies").exit_code == 0
    assert _rebalance(inp, b, "--method", "smote", "--drop-closer-than", "0").exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    assert not read_table(b)["is_synthetic"].any()  # every synthetic row was a copy
