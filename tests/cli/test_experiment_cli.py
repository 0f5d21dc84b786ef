"""CLI: experiment mcrage, evaluate and demo registered on a bare typer app."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from equisynth.cli import demo, evaluate, experiment

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
PATIENT_TREATMENT = DATA / "patient_treatment" / "patient_treatment.csv"


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    for module in (experiment, evaluate, demo):
        module.register(app)
    return app


def _needs(*modules):
    for m in modules:
        pytest.importorskip(m)


def test_bad_arms_value_exits_2_with_one_line(app, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "experiment",
            "mcrage",
            "--data",
            str(PATIENT_TREATMENT),
            "--out",
            str(tmp_path / "o"),
            "--arms",
            "smote,gan",
        ],
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "'gan'" in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_bad_strategy_exits_2_with_one_line(app, tmp_path):
    if not PATIENT_TREATMENT.is_file():
        pytest.skip("shared data folder absent")
    args = ["--data", str(PATIENT_TREATMENT), "--out", str(tmp_path / "o"), "--strategy", "half"]
    result = CliRunner().invoke(app, ["experiment", "mcrage", *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "'half'" in lines[0]
    assert not (tmp_path / "o").exists()


def test_missing_data_file_exits_2(app, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "experiment",
            "mcrage",
            "--data",
            str(tmp_path / "nope.csv"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2
    assert "nope.csv" in result.output and "does not exist" in result.output


@pytest.mark.slow
def test_experiment_mcrage_success_with_tiny_settings(app, tmp_path):
    if not PATIENT_TREATMENT.is_file():
        pytest.skip("shared data folder absent")
    _needs(
        "equisynth.fairness.metrics", "equisynth.resampling.mcrage", "equisynth.evaluation.report"
    )
    out = tmp_path / "exp"
    args = [
        "experiment",
        "mcrage",
        "--data",
        str(PATIENT_TREATMENT),
        "--out",
        str(out),
        "--seeds",
        "2",
        "--arms",
        "imbalanced,smote,mcrage",
        "--generator",
        "empirical",
        "--classifier",
        "lr",
        "--no-plots",
        "--quality",
        "fast",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    res = pd.read_csv(out / "results.csv")
    assert list(res.columns) == ["seed", "arm", "metric", "group", "value"]
    assert set(res["seed"]) == {0, 1}
    assert set(res["arm"]) == {"imbalanced", "smote", "mcrage"}
    assert (out / "summary.md").is_file() and (out / "report.html").is_file()
    quality = pd.read_csv(out / "quality.csv")  # the quality section of the generator arms
    assert {"smote", "mcrage"} == set(quality["arm"])
    assert "mcrage" in result.output  # the printed table
    # A second run does not overwrite without --overwrite ...
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    # ... and does with it (one seed is enough to check that).
    assert CliRunner().invoke(app, [*args, "--seeds", "1", "--overwrite"]).exit_code == 0
    assert set(pd.read_csv(out / "results.csv")["seed"]) == {0}


def test_evaluate_generic_table_with_patient_groups(app, tmp_path):
    _needs(
        "equisynth.fairness.metrics",
        "equisynth.resampling.baselines",
        "equisynth.evaluation.report",
    )
    rng = np.random.default_rng(0)
    n_patients = 150
    visits = rng.integers(1, 4, n_patients)
    pid = np.repeat(np.arange(n_patients), visits)
    sex = np.repeat(rng.choice(["F", "M"], n_patients, p=[0.3, 0.7]), visits)
    x = rng.normal(size=len(pid))
    y = np.where(rng.random(len(pid)) < 1 / (1 + np.exp(-2 * x)), "yes", "no")
    path = tmp_path / "visits.csv"
    pd.DataFrame({"pid": pid, "x": x, "sex": sex, "y": y}).to_csv(path, index=False)
    out = tmp_path / "ev"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(path),
            "--target",
            "y",
            "--positive",
            "yes",
            "--sensitive",
            "sex",
            "--group-col",
            "pid",
            "--arms",
            "real,random_oversample",
            "--seeds",
            "2",
            "--classifier",
            "lr",
            "--no-plots",
            "--quality",
            "none",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    res = pd.read_csv(out / "results.csv")
    assert set(res["arm"]) == {"real", "random_oversample"}
    assert not (out / "quality.csv").exists()  # --quality none
    config = (out / "config.json").read_text()
    assert '"pid"' in config and '"features": [\n    "x",\n    "sex"\n  ]' in config


def test_evaluate_unknown_positive_exits_2(app, tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1, 2, 3, 4], "s": list("abab"), "y": [0, 1, 0, 1]}).to_csv(
        path, index=False
    )
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(path),
            "--target",
            "y",
            "--positive",
            "7",
            "--sensitive",
            "s",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2
    assert "--positive '7'" in result.output and "'y'" in result.output
