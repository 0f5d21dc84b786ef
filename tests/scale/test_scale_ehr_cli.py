"""``fit-ehr`` at scale: 2 gloo ranks under torchrun == 1 process with twice the batch; SIGINT and
``--resume`` through the command line equal an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from equisynth.cli.app import app
from equisynth.data.cohort import Cohort
from equisynth.diffusion.checkpoint import Checkpointer
from equisynth.generators.ehr import HALOGenerator
from equisynth.manifest import read_manifest

runner = CliRunner()
SMALL = ["--d-model", "16", "--n-layers", "1", "--n-heads", "2", "--max-visits", "4",
         "--dropout", "0", "--lr", "0.01", "--min-code-count", "1", "--seed", "0", "-q",
         "--sensitive", "grp", "--fairness", "disparate_impact"]  # fmt: skip


def cohort(n: int = 80, seed: int = 0) -> Cohort:
    """Two groups with different death rates in the last visit and different code frequencies."""
    rng = np.random.default_rng(seed)
    grp = rng.choice(["A", "B"], n)
    static = pd.DataFrame({"patient_id": [f"p{i}" for i in range(n)], "grp": grp})
    vrows, crows = [], []
    for i in range(n):
        k = int(rng.integers(2, 5))
        for j in range(k):
            vid = f"p{i}/v{j}"
            died = j == k - 1 and rng.random() < (0.5 if grp[i] == "A" else 0.15)
            vrows.append((f"p{i}", vid, 10.0 * j, bool(died)))
            extra = [4] if rng.random() < (0.7 if grp[i] == "A" else 0.2) else []
            crows += [(vid, "dx", str(c)) for c in {int(rng.integers(0, 4)), *extra}]
    visits = pd.DataFrame(vrows, columns=["patient_id", "visit_id", "time", "died"])
    return Cohort(static, visits, pd.DataFrame(crows, columns=["visit_id", "vocabulary", "code"]))


def fit_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["fit-ehr", "--data", f"cohort:{data}", "--task", "mortality_next_visit",
            "--demographic", "grp", "--out", str(out), *SMALL, *extra]  # fmt: skip


def gap(a: HALOGenerator, b: HALOGenerator) -> float:
    """Largest weight difference without the attention key biases (softmax ignores them, their
    exact gradient is 0, and Adam turns its float noise into steps; see test_scale_ehr.py)."""
    sa, sb = a.model_.state_dict(), b.model_.state_dict()
    d, out = a.d_model, 0.0
    for k in sa:
        diff = (sa[k] - sb[k]).abs()
        if k.endswith("self_attn.in_proj_bias"):
            diff = torch.cat([diff[:d], diff[2 * d :]])
        out = max(out, float(diff.max()))
    return out


def same(a: HALOGenerator, b: HALOGenerator) -> bool:
    sa, sb = a.model_.state_dict(), b.model_.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.slow
def test_torchrun_two_gloo_ranks_match_one_process_with_twice_the_batch(tmp_path):
    data = cohort().to_parquet(tmp_path / "cohort")
    ddp, ckpt = tmp_path / "ddp", tmp_path / "ckpt"
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "equisynth", *fit_args(data, ddp, "--epochs", "3", "--batch-size", "16",
                                      "--checkpoint-dir", str(ckpt))],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1", EQUISYNTH_DEBUG="1"),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    # rank 0 wrote one model, one manifest and the checkpoints; nothing else was left around
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "cohort", "ddp"]
    assert sorted(p.name for p in ddp.iterdir()) == [
        "config.json", "manifest.json", "model.safetensors"
    ]  # fmt: skip
    manifest = read_manifest(ddp)
    assert manifest["extra"]["world_size"] == 2 and manifest["seed"] == 0
    assert Checkpointer(ckpt, resume=True).latest_step() == 9  # 3 epochs x ceil(80 / 32)
    single = tmp_path / "single"
    result = runner.invoke(app, fit_args(data, single, "--epochs", "3", "--batch-size", "32"))
    assert result.exit_code == 0, result.output
    a, b = HALOGenerator.load(ddp), HALOGenerator.load(single)
    assert gap(a, b) < 1e-4  # float summation order only
    for x, y in zip(a.history_, b.history_, strict=True):
        assert x["nll"] == pytest.approx(y["nll"], rel=1e-4)


def test_cli_sigint_then_resume_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    """A real SIGINT in the middle of ``fit-ehr`` (sent to this process at step 7, as Ctrl-C
    would), then the same command with ``--resume``: the model equals an uninterrupted run's."""
    data = cohort(n=64).to_parquet(tmp_path / "cohort")
    ckpt, out = tmp_path / "ckpt", tmp_path / "model"
    train = ["--epochs", "10", "--batch-size", "32", "--checkpoint-dir", str(ckpt),
             "--checkpoint-every", "4"]  # fmt: skip
    due = Checkpointer.due

    def due_and_interrupt(self, step):
        if step == 7:
            os.kill(os.getpid(), signal.SIGINT)
        return due(self, step)

    with monkeypatch.context() as m:
        m.setattr(Checkpointer, "due", due_and_interrupt)
        stopped = runner.invoke(app, fit_args(data, out, *train))
    assert stopped.exit_code == 130, stopped.output
    err = stopped.stderr.strip().splitlines()
    assert err == [f"interrupted at step 8: checkpoint saved to {ckpt / 'step-000000008'}; "
                   "run the same command with --resume to continue"]  # fmt: skip
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert Checkpointer(ckpt, resume=True).steps() == [4, 8]
    resumed = runner.invoke(app, fit_args(data, out, *train, "--resume"))
    assert resumed.exit_code == 0, resumed.output
    reference = tmp_path / "reference"
    result = runner.invoke(app, fit_args(data, reference, *train[:4]))
    assert result.exit_code == 0, result.output
    a, b = HALOGenerator.load(out), HALOGenerator.load(reference)
    assert same(a, b) and a.history_ == b.history_
    assert (out / "model.safetensors").read_bytes() == (
        reference / "model.safetensors"
    ).read_bytes()
    assert read_manifest(out)["config"]["resume"] is True
