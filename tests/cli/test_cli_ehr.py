"""``fit-ehr`` / ``sample-ehr``: outputs, manifests, byte-identical samples, one-line errors."""

from __future__ import annotations

import hashlib
import json
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from equisynth.cli.app import app
from equisynth.cli.ehr import fit_ehr_command, source_files
from equisynth.data.cohort import Cohort
from equisynth.manifest import read_manifest, sha256_file

runner = CliRunner()
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
TINY = ["--epochs", "2", "--d-model", "16", "--n-layers", "1", "--n-heads", "2",
        "--max-visits", "4", "--min-code-count", "1", "--seed", "0", "-q"]  # fmt: skip


def tiny_cohort(n: int = 60, seed: int = 0, died: float | None = None) -> Cohort:
    """Group A dies more often in its last visit and has code dx:4 more often than group B."""
    rng = np.random.default_rng(seed)
    grp, sex = rng.choice(["A", "B"], n), rng.choice(["F", "M"], n)
    static = pd.DataFrame({"patient_id": [f"p{i}" for i in range(n)], "grp": grp, "sex": sex})
    vrows, crows = [], []
    for i in range(n):
        k = int(rng.integers(2, 5))
        p_die = (0.5 if grp[i] == "A" else 0.15) if died is None else died
        for j in range(k):
            vid = f"p{i}/v{j}"
            vrows.append((f"p{i}", vid, 10.0 * j, bool(j == k - 1 and rng.random() < p_die)))
            extra = [4] if rng.random() < (0.7 if grp[i] == "A" else 0.2) else []
            crows += [(vid, "dx", str(c)) for c in {int(rng.integers(0, 4)), *extra}]
    visits = pd.DataFrame(vrows, columns=["patient_id", "visit_id", "time", "died"])
    return Cohort(static, visits, pd.DataFrame(crows, columns=["visit_id", "vocabulary", "code"]))


def digest(path: Path) -> str | None:
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in files)).hexdigest()
    return None


def invoke(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def fit_args(cohort_dir: Path, out: Path, *extra) -> list:
    return ["fit-ehr", "--data", f"cohort:{cohort_dir}", "--task", "mortality_next_visit",
            "--demographic", "grp", "--demographic", "sex", "--out", out, *TINY, *extra]  # fmt: skip


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory) -> Path:
    return tiny_cohort().to_parquet(tmp_path_factory.mktemp("data") / "cohort")


@pytest.fixture(scope="module")
def model_dir(cohort_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "model"
    extra = ["--sensitive", "grp", "--fairness", "disparate_impact"]
    result = invoke(*fit_args(cohort_dir, out, *extra))
    assert result.exit_code == 0, result.output
    return out


def test_help_of_both_commands_lists_their_options():
    fit = invoke("fit-ehr", "--help")
    assert fit.exit_code == 0
    for option in ("--data", "--task", "--demographic", "--fairness-lambda", "--resume"):
        assert option in fit.stdout
    sample = invoke("sample-ehr", "--help")
    assert sample.exit_code == 0
    for option in ("--n", "--condition", "--label", "--out"):
        assert option in sample.stdout


def test_help_defaults_are_the_generators_defaults():
    from equisynth.generators.ehr import HALOGenerator

    defaults = HALOGenerator().get_params()
    names = {"epochs": "n_epochs", "batch_size": "batch_size", "d_model": "d_model",
             "n_layers": "n_layers", "n_heads": "n_heads", "max_visits": "max_visits",
             "dropout": "dropout", "lr": "lr"}  # fmt: skip
    hints = typing.get_type_hints(fit_ehr_command, include_extras=True)
    for option, param in names.items():
        help_text = hints[option].__metadata__[0].help
        assert f"(default {defaults[param]:g})" in help_text, (option, help_text)


def test_fit_writes_model_and_manifest_with_hashed_inputs(cohort_dir, model_dir):
    from equisynth.generators.ehr import HALOGenerator

    assert sorted(p.name for p in model_dir.iterdir()) == [
        "config.json", "manifest.json", "model.safetensors"
    ]  # fmt: skip
    gen = HALOGenerator.load(model_dir)
    assert gen.layout_.columns == ["grp", "sex"] and gen.fairness == "disparate_impact"
    assert gen.fairness_lambda == 1.0 and gen.sensitive_ == ["grp"]
    assert gen.vocab_ == [f"dx:{i}" for i in range(5)] and len(gen.history_) == 2
    manifest = read_manifest(model_dir)
    assert manifest["command"] == "fit-ehr" and manifest["seed"] == 0
    assert manifest["config"]["fairness_lambda"] == 1.0
    assert not [k for k, v in manifest["config"].items() if "<function" in str(v)]
    hashed = {Path(i["path"]).name: i["sha256"] for i in manifest["inputs"]}
    assert hashed == {
        name: sha256_file(cohort_dir / name)
        for name in ("cohort.json", "static.parquet", "visits.parquet", "codes.parquet")
    }
    assert manifest["extra"]["task"]["n_patients"] == 60
    assert set(manifest["outputs"][0]["files"]) == {"config.json", "model.safetensors"}


def test_sample_cohort_directory_is_byte_identical_for_a_seed(model_dir, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, 3), (b, 3), (c, 4)):
        result = invoke("sample-ehr", model_dir, "--n", 40, "--seed", seed, "--out", out, "-q")
        assert result.exit_code == 0, result.output
    files = ["codes.parquet", "cohort.json", "static.parquet", "visits.parquet"]
    assert sorted(p.name for p in a.iterdir()) == sorted([*files, "manifest.json"])
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "visits.parquet").read_bytes() != (c / "visits.parquet").read_bytes()
    cohort = Cohort.from_parquet(a)
    assert cohort.n_patients == 40 and cohort.static["is_synthetic"].all()
    assert set(cohort.static.columns) == {"patient_id", "grp", "sex", "label", "is_synthetic"}
    manifest = read_manifest(a)
    assert manifest["command"] == "sample-ehr" and manifest["inputs"][0]["kind"] == "directory"
    # without --seed the model's own sampling seed: repeatable as well
    d, e = tmp_path / "d.parquet", tmp_path / "e.parquet"
    for out in (d, e):
        assert invoke("sample-ehr", model_dir, "--n", 40, "--out", out, "-q").exit_code == 0
    assert d.read_bytes() == e.read_bytes()


def test_sample_event_table_is_long_and_conditioned(model_dir, tmp_path):
    out = tmp_path / "events.csv"
    result = invoke("sample-ehr", model_dir, "--n", 30, "--condition", "grp=B",
                    "--condition", "sex=F", "--label", 1, "--seed", 0, "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote 30 synthetic patients" in result.stderr
    table = pd.read_csv(out, dtype={"grp": str, "sex": str})
    assert list(table.columns) == ["patient_id", "visit", "code", "grp", "sex", "label"]
    assert table["patient_id"].nunique() == 30
    assert (
        (table["grp"] == "B").all() and (table["sex"] == "F").all() and (table["label"] == 1).all()
    )
    assert set(table["code"]) <= {f"dx:{i}" for i in range(5)}
    # visits are numbered 0.. per patient, and each (patient, visit, code) appears once
    first = table.groupby("patient_id")["visit"].min()
    assert (first == 0).all() and not table.duplicated(["patient_id", "visit", "code"]).any()
    assert (tmp_path / "events.csv.manifest.json").is_file()
    again = tmp_path / "again.csv"
    invoke("sample-ehr", model_dir, "--n", 30, "--condition", "grp=B", "--condition", "sex=F",
           "--label", 1, "--seed", 0, "--out", again)  # fmt: skip
    assert again.read_bytes() == out.read_bytes()


def test_fit_is_reproducible_and_overwrite_replaces_only_earlier_outputs(
    cohort_dir, model_dir, tmp_path
):
    out, twin = tmp_path / "m", tmp_path / "twin"
    assert invoke(*fit_args(cohort_dir, out)).exit_code == 0
    assert invoke(*fit_args(cohort_dir, twin)).exit_code == 0
    for name in ("config.json", "model.safetensors"):  # same seed: byte-identical model files
        assert (out / name).read_bytes() == (twin / name).read_bytes(), name
    first = (out / "model.safetensors").read_bytes()
    result = invoke(*fit_args(cohort_dir, out, "--seed", "1", "--overwrite"))
    assert result.exit_code == 0, result.output
    assert (out / "model.safetensors").read_bytes() != first
    unrelated = tmp_path / "thesis"
    unrelated.mkdir()
    (unrelated / "chapter.txt").write_text("keep me")
    for args in (fit_args(cohort_dir, unrelated, "--overwrite"),
                 ["sample-ehr", model_dir, "--n", 5, "--out", unrelated, "--overwrite"]):  # fmt: skip
        result = invoke(*args)
        assert result.exit_code == 2 and "refusing to replace it" in result.stderr
    assert (unrelated / "chapter.txt").read_text() == "keep me"
    sample = tmp_path / "s"
    assert invoke("sample-ehr", model_dir, "--n", 5, "--out", sample).exit_code == 0
    assert invoke("sample-ehr", model_dir, "--n", 7, "--out", sample, "--overwrite").exit_code == 0
    assert Cohort.from_parquet(sample).n_patients == 7


# ---------------------------------------------------------------------------- errors
def run_bad(args: list, expect: str, inputs: list[Path], out: Path) -> None:
    """Exit 2, one ``error:`` line naming the problem, no traceback, inputs unchanged, no output."""
    before = {p: digest(p) for p in inputs}
    existed = digest(out)
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in result.output
    assert expect in err, err
    for path in inputs:
        assert digest(path) == before[path], f"{path} was modified"
    assert digest(out) == existed, "the output was written or changed"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        ({"--data": "csv:{cohort}"}, "unknown data source kind 'csv'"),
        ({"--data": "cohort:{cohort}-missing"}, "does not exist"),
        ({"--task": "survival"}, "--task must be one of mortality_next_visit"),
        ({"--demographic": "race"}, "['race'] not in the cohort's static table"),
        ({"--sensitive": "race"}, "--sensitive 'race' is not a --demographic column"),
        ({"--fairness": "parity"}, "--fairness must be one of disparate_impact"),
        ({"--fairness-lambda": "2"}, "--fairness-lambda needs --fairness"),
        ({"--resume": None}, "--resume need --checkpoint-dir"),
        ({"--device": "tpu"}, "--device must be cpu or cuda"),
        ({"--n-heads": "3"}, "d_model (16) must be divisible by n_heads (3)"),
    ],
)
def test_fit_bad_input(cohort_dir, tmp_path, change, expect):
    args = fit_args(cohort_dir, tmp_path / "m")
    for option, value in change.items():
        if value is None:  # a flag
            args.append(option)
        elif option in args:  # replace the (first) value of that option
            args[args.index(option) + 1] = value.format(cohort=cohort_dir)
        else:
            args += [option, value.format(cohort=cohort_dir)]
    run_bad(args, expect, [cohort_dir], tmp_path / "m")


def test_fit_task_with_one_label_class(tmp_path):
    cohort = tiny_cohort(died=0.0).to_parquet(tmp_path / "alive")
    run_bad(fit_args(cohort, tmp_path / "m"), "every one of its 60 patients label 0",
            [cohort], tmp_path / "m")  # fmt: skip


def test_fit_fairness_needs_sensitive_and_out_must_be_new(cohort_dir, model_dir, tmp_path):
    run_bad(fit_args(cohort_dir, tmp_path / "m", "--fairness", "worst_group_tpr"),
            "--fairness worst_group_tpr needs --sensitive", [cohort_dir], tmp_path / "m")  # fmt: skip
    run_bad(fit_args(cohort_dir, model_dir), "exists; pass --overwrite", [cohort_dir], model_dir)


@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        (["--condition", "race=black", "--condition", "sex=F"], "'race' is not a demographic"),
        (["--condition", "grp=C", "--condition", "sex=F"], "grp=C: level not seen in training"),
        (["--condition", "grp"], "must look like COL=VALUE"),
        (["--condition", "grp=A"], "missing: sex, e.g. --condition sex=F"),
        (["--label", "1"], "--label needs a value for every demographic column"),
        (["--label", "2"], "--label must be 0 or 1"),
        (["--device", "tpu"], "--device must be cpu or cuda"),
    ],
)
def test_sample_bad_input(model_dir, tmp_path, extra, expect):
    out = tmp_path / "s.csv"
    args = ["sample-ehr", model_dir, "--n", 5, "--out", out, *extra]
    run_bad(args, expect, [model_dir], out)


def test_sample_refuses_existing_output_and_models_that_are_not_ehr_models(model_dir, tmp_path):
    out = tmp_path / "s.csv"
    out.write_text("keep")
    run_bad(["sample-ehr", model_dir, "--n", 5, "--out", out], "exists; pass --overwrite",
            [model_dir], out)  # fmt: skip
    out = tmp_path / "new"
    # a tabular model directory (written by `equisynth fit`)
    df = pd.DataFrame({"x": np.arange(40.0), "s": ["F", "M"] * 20, "y": [0, 1, 1, 0] * 10})
    df.to_csv(tmp_path / "t.csv", index=False)
    tab = tmp_path / "tabular"
    fit = invoke("fit", tmp_path / "t.csv", "--target", "y", "--sensitive", "s", "--out", tab,
                 "--n-iter", 2, "--seed", 0, "-q")  # fmt: skip
    assert fit.exit_code == 0, fit.output
    run_bad(["sample-ehr", tab, "--n", 5, "--out", out], "not an EHR model", [tab], out)
    run_bad(["sample-ehr", tmp_path, "--n", 5, "--out", out], "written by `equisynth fit-ehr`",
            [], out)  # fmt: skip
    run_bad(["sample-ehr", tmp_path / "nope", "--n", 5, "--out", out], "does not exist", [], out)
    # a tampered weights file (one byte flipped) and a hand-edited config
    for name, edit in (("model.safetensors", "flip"), ("config.json", "edit")):
        bad = tmp_path / f"bad-{name}"
        bad.mkdir()
        for f in model_dir.iterdir():
            (bad / f.name).write_bytes(f.read_bytes())
        if edit == "flip":
            raw = bytearray((bad / name).read_bytes())
            raw[-1] ^= 0xFF
            (bad / name).write_bytes(bytes(raw))
        else:
            doc = json.loads((bad / name).read_text())
            doc["config"]["params"]["d_model"] = 32
            (bad / name).write_text(json.dumps(doc))
        args = ["sample-ehr", bad, "--n", 5, "--out", out]
        run_bad(args, "checksum mismatch", [bad], out)
        run_bad(args, "re-fit it with `equisynth fit-ehr`", [bad], out)


def test_source_files_lists_the_tables_the_loaders_read(tmp_path):
    synthea, mimic = DATA / "synthea_1k", DATA / "mimic3_demo"
    if not synthea.is_dir() or not mimic.is_dir():
        pytest.skip("../shared/data is not available")
    names = [p.name for p in source_files(f"synthea:{synthea}")]
    assert names == ["patients.csv", "conditions.csv.gz", "immunizations.csv.gz", "careplans.csv"]
    names = [p.name.split(".")[0].upper() for p in source_files(f"mimic3:{mimic}")]
    assert names == ["ADMISSIONS", "PATIENTS", "DIAGNOSES_ICD", "PROCEDURES_ICD", "PRESCRIPTIONS"]
