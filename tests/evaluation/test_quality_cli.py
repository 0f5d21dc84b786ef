"""``equisynth quality``: success path and one-line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from equisynth.cli import quality

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="module")
def app():
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test app."""

    quality.register(app)
    return app


@pytest.fixture()
def files(tmp_path):
    if not DATA.is_dir():
        pytest.skip("shared data folder absent")
    df = pd.read_csv(DATA / "heart_failure" / "heart_failure_clinical_records_dataset.csv")
    df = df.drop(columns="time").sample(frac=1.0, random_state=0)
    df.iloc[:120].to_csv(tmp_path / "real.csv", index=False)
    synth = df.iloc[120:240].assign(is_synthetic=True)
    synth.to_csv(tmp_path / "synth.csv", index=False)
    df.iloc[240:].to_parquet(tmp_path / "holdout.parquet")
    synth.drop(columns="age").to_csv(tmp_path / "bad.csv", index=False)
    return tmp_path


def test_quality_success_writes_table_plots_and_markdown(app, files):
    out = files / "q"
    args = ["quality", "--real", str(files / "real.csv"), "--synthetic", str(files / "synth.csv")]
    args += ["--strata", "sex", "--holdout", str(files / "holdout.parquet"), "--out", str(out)]
    args += ["--classifier", "lr"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "C2ST AUC" in res.output and "DCR ratio" in res.output
    table = pd.read_csv(out / "quality.csv")
    assert {"fidelity", "privacy"} == set(table["section"])
    assert {"all", "sex=0", "sex=1"} <= set(table["stratum"])
    assert (out / "column_distances.png").stat().st_size > 0
    assert "c2st_auc" in (out / "quality.md").read_text()
    # existing output is kept without --overwrite
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "--overwrite" in res.output


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--synthetic", "bad.csv"], "'age'"),
        (["--synthetic", "nope.csv"], "does not exist"),
        (["--synthetic", "synth.csv", "--strata", "race"], "'race'"),
        (["--synthetic", "synth.csv", "--classifier", "svm"], "--classifier"),
    ],
)
def test_quality_bad_input_exits_2_with_one_line(app, files, extra, needle):
    extra = [str(files / e) if e.endswith(".csv") else e for e in extra]
    res = CliRunner().invoke(
        app, ["quality", "--real", str(files / "real.csv"), "--out", str(files / "o"), *extra]
    )
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
    assert not (files / "o").exists()
