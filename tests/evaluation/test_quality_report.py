"""write_quality_outputs: table, Markdown fragment (per arm) and plots, atomically."""

from __future__ import annotations

import pandas as pd
import pytest

from equisynth.evaluation.quality import write_quality_outputs
from equisynth.exceptions import DataError, OutputExistsError


def _frame(arm: str, auc: float) -> pd.DataFrame:
    rows = [
        ("c2st_auc", "all", "", auc),
        ("knn_recall", "all", "", 0.9),
        ("c2st_auc", "SEX=F", "", auc + 0.05),
        ("ks", "all", "AGE", 0.1),
        ("tv", "all", "SEX", 0.02),
    ]
    return pd.DataFrame(rows, columns=["metric", "stratum", "column", "value"]).assign(arm=arm)


def test_write_outputs_and_markdown_per_arm(tmp_path):
    frame = pd.concat([_frame("smote", 0.93), _frame("mcrage", 0.61)])
    paths = write_quality_outputs({"fidelity": frame}, tmp_path / "out")
    table = pd.read_csv(paths["table"])
    assert len(table) == len(frame) and set(table["section"]) == {"fidelity"}
    md = paths["markdown"].read_text()
    assert "| arm | stratum |" in md and "| mcrage | SEX=F | 0.66 |" in md
    assert "AGE" not in md  # per-column rows stay in the CSV and the plot
    assert paths["column_distances"].stat().st_size > 0
    assert paths["fidelity_by_stratum"].stat().st_size > 0
    with pytest.raises(OutputExistsError, match="overwrite"):
        write_quality_outputs(frame, tmp_path / "out")
    write_quality_outputs(frame, tmp_path / "out", overwrite=True, plots=False)
    assert not (tmp_path / "out" / "column_distances.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp dir left behind


def test_bad_frame_is_named():
    with pytest.raises(DataError, match="'privacy'"):
        write_quality_outputs({"privacy": pd.DataFrame({"x": [1]})}, "unused")
