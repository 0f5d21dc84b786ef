"""Same seed, same bytes: rebalance, fit, sample and experiments; manifests next to outputs."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from equisynth.cli.app import app
from equisynth.manifest import DEPENDENCIES, manifest_path, read_manifest

runner = CliRunner()
TIMING_FIELDS = ("started_utc", "finished_utc", "wall_seconds")


def _table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": np.round(rng.normal(50, 10, n), 2),
            "k": rng.integers(0, 9, n),
            "c": rng.choice(["a", "b", "c"], n),
            "s": rng.choice(["F", "M"], n),
            "y": (rng.random(n) < 0.3).astype(int),
        }
    )


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("repro") / "in.csv"
    _table().to_csv(path, index=False)
    return path


def _run(*args) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _without_timing(document: dict) -> dict:
    return {k: v for k, v in document.items() if k not in TIMING_FIELDS}


@pytest.mark.parametrize("method", ["mcrage", "smote", "random"])
@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_rebalance_same_seed_same_bytes(tmp_path, table, method, ext):
    out = tmp_path / f"out{ext}"
    args = ["rebalance", table, "--target", "y", "--sensitive", "s", "--method", method]
    args += ["--n-iter", "5", "--out", out, "-q", "--overwrite"]
    _run(*args, "--seed", "11")
    first, first_manifest = out.read_bytes(), read_manifest(out)
    _run(*args, "--seed", "11")
    assert out.read_bytes() == first
    # the manifest differs only by its timings: everything else is a function of the run
    assert _without_timing(read_manifest(out)) == _without_timing(first_manifest)
    if method == "mcrage":  # a different seed gives different synthetic rows
        _run(*args, "--seed", "12")
        assert out.read_bytes() != first


def test_rebalance_without_seed_is_repeatable_from_its_manifest(tmp_path, table):
    out = tmp_path / "out.csv"
    base = ["rebalance", table, "--target", "y", "--sensitive", "s", "--method", "mcrage"]
    base += ["--n-iter", "5", "-q"]
    _run(*base, "--out", out)
    manifest = read_manifest(out)
    assert manifest["seed_source"] == "drawn" and isinstance(manifest["seed"], int)
    again = tmp_path / "again.csv"
    _run(*base, "--seed", manifest["seed"], "--out", again)
    assert again.read_bytes() == out.read_bytes()


def test_fit_and_sample_same_seed_same_bytes(tmp_path, table):
    models = []
    for name in ("m1", "m2"):
        model = tmp_path / name
        _run("fit", table, "--target", "y", "--sensitive", "s", "--n-iter", "5", "--seed", "3",
             "--out", model, "-q")  # fmt: skip
        models.append(model)
    for name in ("config.json", "model.safetensors", "arrays.safetensors"):
        assert _sha(models[0] / name) == _sha(models[1] / name), name
    config = read_manifest(models[0])["config"]
    assert config["n_iter"] == 5
    assert not any("<function" in str(v) for v in config.values())  # only options recorded
    outs = []
    for i, model in enumerate(models):
        out = tmp_path / f"s{i}.parquet"
        _run("sample", model, "--n", "40", "--condition", "y=1", "--condition", "s=F",
             "--seed", "5", "--out", out, "-q")  # fmt: skip
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    # without --seed, a model samples with the seed fixed at fit time: still repeatable
    plain = [tmp_path / "p1.csv", tmp_path / "p2.csv"]
    for out in plain:
        _run("sample", models[0], "--n", "30", "--out", out, "-q")
    assert plain[0].read_bytes() == plain[1].read_bytes()
    assert read_manifest(plain[0])["seed_source"] == "none"


def test_manifest_fields(tmp_path, table):
    out = tmp_path / "bal.csv"
    _run("rebalance", table, "--target", "y", "--sensitive", "s", "--method", "smote",
         "--seed", "4", "--out", out, "-q")  # fmt: skip
    path = manifest_path(out)
    assert path.name == "bal.csv.manifest.json" and path.parent == out.parent
    m = json.loads(path.read_text())
    assert m["format"] == "equisynth-manifest" and m["command"] == "rebalance"
    assert m["seed"] == 4 and m["seed_source"] == "given"
    assert m["config"]["method"] == "smote" and m["config"]["strategy"] == "auto"
    assert m["config"]["target"] == "y" and m["config"]["sensitive"] == ["s"]
    assert m["inputs"] == [
        {"path": str(table), "kind": "file", "bytes": table.stat().st_size, "sha256": _sha(table)}
    ]
    assert m["outputs"][0]["sha256"] == _sha(out)
    assert set(DEPENDENCIES) <= set(m["versions"]) and m["versions"]["equisynth"]
    assert m["versions"]["pandas"] == pd.__version__
    assert m["wall_seconds"] >= 0 and m["started_utc"] <= m["finished_utc"]
    assert m["environment"]["python"]


def test_directory_outputs_hold_their_manifest(tmp_path, table):
    model = tmp_path / "model"
    _run("fit", table, "--target", "y", "--sensitive", "s", "--n-iter", "2", "--seed", "0",
         "--out", model, "-q")  # fmt: skip
    m = read_manifest(model)
    assert (model / "manifest.json").is_file() and m["command"] == "fit"
    assert m["extra"]["generator"]["n_iter"] == 2
    files = m["outputs"][0]["files"]
    assert set(files) == {"config.json", "model.safetensors", "arrays.safetensors"}
    assert all(files[name] == _sha(model / name) for name in files)
    sample_out = tmp_path / "s.csv"
    _run("sample", model, "--n", "5", "--out", sample_out, "-q")
    sm = read_manifest(sample_out)
    assert sm["inputs"][0]["kind"] == "directory"
    assert sm["inputs"][0]["files"]["model.safetensors"] == _sha(model / "model.safetensors")


def test_quality_writes_a_manifest(tmp_path, table):
    synth = tmp_path / "synth.csv"
    _table(80, seed=1).to_csv(synth, index=False)
    out = tmp_path / "quality"
    _run("quality", "--real", table, "--synthetic", synth, "--out", out, "--classifier", "lr")
    m = read_manifest(out)
    assert m["command"] == "quality" and [i["sha256"] for i in m["inputs"]] == [
        _sha(table),
        _sha(synth),
    ]


def test_experiment_same_seeds_same_results(tmp_path):
    for module in ("equisynth.fairness.metrics", "equisynth.evaluation.report"):
        pytest.importorskip(module)
    data = tmp_path / "data.csv"
    _table(300).to_csv(data, index=False)
    outs = []
    for name in ("e1", "e2"):
        out = tmp_path / name
        _run("evaluate", data, "--target", "y", "--sensitive", "s", "--arms", "real,smote,mcrage",
             "--classifier", "lr", "--seeds", "2", "--n-iter", "5", "--no-model-selection",
             "--no-plots", "--quality", "none", "--out", out)  # fmt: skip
        outs.append(out)
    assert (outs[0] / "results.csv").read_bytes() == (outs[1] / "results.csv").read_bytes()
    assert read_manifest(outs[0])["command"] == "evaluate"
