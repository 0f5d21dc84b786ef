"""CLI: ``equisynth experiment fairsynth`` on the Synthea sample export, tiny settings."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from equisynth.cli import experiment

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SYNTHEA = DATA / "synthea_1k"
TINY = [
    "--generator-epochs", "1",
    "--generator-d-model", "16",
    "--generator-layers", "1",
    "--downstream-epochs", "2",
    "--synth-per-group", "40",
    "--rounds", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    experiment.register(app)
    return app


def _run(app, *args):
    return CliRunner().invoke(app, ["experiment", "fairsynth", *map(str, args)])


def _one_error_line(result, *needles):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.slow
def test_success_writes_results_summary_report_and_manifest(app, tmp_path):
    if not SYNTHEA.is_dir():
        pytest.skip("shared data folder absent")
    out = tmp_path / "exp"
    args = ["--data", f"synthea:{SYNTHEA}", "--out", out, "--seeds", "1", *TINY, "--no-plots", "-q"]
    result = _run(app, *args)
    assert result.exit_code == 0, result.output
    res = pd.read_csv(out / "results.csv")
    assert list(res.columns) == ["seed", "arm", "metric", "group", "value"]
    assert list(dict.fromkeys(res["arm"])) == [
        "real",
        "real_synth",
        "real_oversample",
        "real_fairsynth",
    ]
    assert {"disparate_impact", "worst_group_tpr", "f1", "auroc", "auprc"} <= set(res["metric"])
    for name in ("summary.md", "report.html", "quality.csv", "manifest.json"):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "experiment fairsynth"
    assert manifest["config"]["task"] == "mortality_next_visit"
    config = json.loads((out / "config.json").read_text())
    assert config["sensitive"] == ["race"] and config["n_patients"] > 1000
    assert "real_fairsynth" in result.output and "disparate_impact" in result.output
    again = _run(app, *args)
    _one_error_line(again, "--overwrite")


def test_grid_and_options(app, tmp_path):
    if not SYNTHEA.is_dir():
        pytest.skip("shared data folder absent")
    out = tmp_path / "grid"
    result = _run(
        app, "--data", f"synthea:{SYNTHEA}", "--out", out, "--seeds", "1", *TINY,
        "--arms", "real,real_oversample", "--grid", "synth", "--grid-values", "0,30",
        "--task", "readmission", "--sensitive", "gender", "--no-plots", "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    res = pd.read_csv(out / "results.csv")
    assert list(dict.fromkeys(res["arm"])) == [
        "real@n_synth=0",
        "real@n_synth=30",
        "real_oversample@n_synth=0",
        "real_oversample@n_synth=30",
    ]
    groups = set(res.loc[res["group"] != "all", "group"])
    assert groups == {"gender=F", "gender=M"}
    assert not (out / "metrics.png").exists()


def test_bad_source_prefix_and_missing_path_exit_2(app, tmp_path):
    _one_error_line(_run(app, "--data", "csv:x.csv", "--out", tmp_path / "o"), "'csv'")
    missing = tmp_path / "nope"
    _one_error_line(
        _run(app, "--data", f"synthea:{missing}", "--out", tmp_path / "o"), "does not exist"
    )
    assert not (tmp_path / "o").exists()


def test_unknown_sensitive_column_and_bad_options_exit_2(app, tmp_path):
    if not SYNTHEA.is_dir():
        pytest.skip("shared data folder absent")
    base = ["--data", f"synthea:{SYNTHEA}", "--out", tmp_path / "o"]
    _one_error_line(_run(app, *base, "--sensitive", "religion"), "religion")
    _one_error_line(_run(app, *base, "--arms", "real,gan"), "'gan'")
    _one_error_line(_run(app, *base, "--grid", "epochs"), "--grid")
    _one_error_line(_run(app, *base, "--synth-per-group", "lots"), "--synth-per-group")
    _one_error_line(_run(app, *base, "--task", "survival"), "--task")
    assert not (tmp_path / "o").exists()


def test_task_with_a_single_label_class_exits_2(app, tmp_path):
    from equisynth.data.cohort import Cohort

    static = pd.DataFrame({"patient_id": [f"p{i}" for i in range(30)], "sex": ["F", "M"] * 15})
    visits = pd.DataFrame(
        {
            "patient_id": [f"p{i}" for i in range(30) for _ in range(3)],
            "visit_id": [f"v{i}_{k}" for i in range(30) for k in range(3)],
            "time": [float(k) for _ in range(30) for k in range(3)],
            "died": [False] * 90,
        }
    )
    codes = pd.DataFrame(
        {"visit_id": visits["visit_id"], "vocabulary": "dx", "code": ["a", "b", "c"] * 30}
    )
    Cohort(static, visits, codes).to_parquet(tmp_path / "cohort")
    result = _run(
        app, "--data", f"cohort:{tmp_path / 'cohort'}", "--sensitive", "sex",
        "--out", tmp_path / "o",
    )  # fmt: skip
    _one_error_line(result, "single label class")
