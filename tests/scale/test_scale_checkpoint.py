"""Checkpoints: atomic safetensors + JSON, exact resume after SIGINT / SIGKILL, in memory and CLI."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import torch
from conftest import cli, cli_popen, make_table

from equisynth.diffusion.checkpoint import Checkpointer
from equisynth.exceptions import ConfigError, TrainingInterrupted
from equisynth.generators.tabular import TabularDiffusionGenerator
from equisynth.io import read_table

SMALL = {"hidden": (32, 32), "dim_t": 16, "timesteps": 50, "batch_size": 64, "random_state": 0}


def weights(gen) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in gen.model_.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_checkpointer_is_atomic_prunes_and_refuses_mismatches(tmp_path, caplog):
    ck = Checkpointer(tmp_path, every=5, keep=2, fingerprint={"lr": 0.1})
    for step in (5, 10, 15):
        ck.save(step, {"w": torch.full((3,), float(step))}, {"loss_history": [[step, 1.0]]})
    assert ck.steps() == [10, 15]  # only the newest two are kept
    state, meta = ck.load()
    assert meta["step"] == 15 and state["w"].tolist() == [15.0] * 3
    assert "pickle" not in (tmp_path / "step-000000015" / "meta.json").read_text()
    # a killed save leaves only a hidden temporary directory, which is ignored
    (tmp_path / ".step-000000020.abc.tmp").mkdir()
    assert ck.latest_step() == 15
    # a corrupt newest checkpoint is skipped (checksum), the previous one is used
    blob = tmp_path / "step-000000015" / "state.safetensors"
    raw = bytearray(blob.read_bytes())
    raw[-1] ^= 0xFF
    blob.write_bytes(bytes(raw))
    assert ck.latest_step() == 10
    assert "fails its checksum" in caplog.text
    # resuming needs resume=True, and the same run
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        Checkpointer(tmp_path, every=5)
    other = Checkpointer(tmp_path, every=5, resume=True, fingerprint={"lr": 0.2})
    with pytest.raises(ConfigError, match=r"lr: checkpoint 0\.1, now 0\.2"):
        other.load()
    with pytest.raises(ConfigError, match="positive integer"):
        Checkpointer(tmp_path / "new", every=0)


def test_sigint_saves_a_checkpoint_and_resume_equals_uninterrupted(tmp_path):
    df = make_table(800)
    kw = {**SMALL, "n_iter": 40}
    reference = TabularDiffusionGenerator(**kw).fit(df, condition_on=["y", "sex"])
    # fit is reproducible (seeded initial weights, explicit generators)
    again = TabularDiffusionGenerator(**kw).fit(df, condition_on=["y", "sex"])
    assert same(weights(reference), weights(again))

    def interrupt(step, gen):
        if step == 25:
            os.kill(os.getpid(), signal.SIGINT)

    ckpt = tmp_path / "ckpt"
    with pytest.raises(TrainingInterrupted) as info:
        TabularDiffusionGenerator(**kw).fit(
            df, condition_on=["y", "sex"], callback=interrupt, eval_every=5,
            checkpoint_dir=ckpt, checkpoint_every=10,
        )  # fmt: skip
    assert info.value.step == 25 and info.value.signum == signal.SIGINT
    assert Checkpointer(ckpt, resume=True).steps() == [20, 25]
    resumed = TabularDiffusionGenerator(**kw).fit(
        df, condition_on=["y", "sex"], checkpoint_dir=ckpt, checkpoint_every=10, resume=True
    )
    assert same(weights(resumed), weights(reference))
    assert resumed.loss_history_ == reference.loss_history_
    # training longer from the final checkpoint equals a longer run from scratch
    longer = TabularDiffusionGenerator(**{**kw, "n_iter": 50})
    longer.fit(df, condition_on=["y", "sex"], checkpoint_dir=ckpt, resume=True)
    direct = TabularDiffusionGenerator(**{**kw, "n_iter": 50}).fit(df, condition_on=["y", "sex"])
    assert same(weights(longer), weights(direct))
    with pytest.raises(ConfigError, match="beyond n_iter=30"):
        TabularDiffusionGenerator(**{**kw, "n_iter": 30}).fit(
            df, condition_on=["y", "sex"], checkpoint_dir=ckpt, resume=True
        )
    # other data or settings cannot resume this run
    with pytest.raises(ConfigError, match="different run"):
        TabularDiffusionGenerator(**{**kw, "lr": 1e-3}).fit(
            df, condition_on=["y", "sex"], checkpoint_dir=ckpt, resume=True
        )
    with pytest.raises(ConfigError, match="different run"):
        TabularDiffusionGenerator(**kw).fit(
            df.iloc[:-1], condition_on=["y", "sex"], checkpoint_dir=ckpt, resume=True
        )


def test_random_state_none_resumes_with_the_seeds_of_the_checkpoint(tmp_path):
    df = make_table(300)
    kw = {**SMALL, "random_state": None, "n_iter": 20}
    first = TabularDiffusionGenerator(**kw).fit(
        df, condition_on=["y", "sex"], checkpoint_dir=tmp_path, checkpoint_every=10
    )
    # resuming the finished run restores it exactly, although no seed was given
    again = TabularDiffusionGenerator(**kw).fit(
        df, condition_on=["y", "sex"], checkpoint_dir=tmp_path, resume=True
    )
    assert same(weights(first), weights(again))
    assert first.sample(n=20).equals(again.sample(n=20))


# ---------------------------------------------------------------------------- CLI
N_ITER = 60
ARGS = ["--target", "y", "--sensitive", "sex", "--seed", "0", "--batch-size", "32", "-q"]


def _fit_args(root, ckpt, *extra):
    return ["fit", str(root / "d.csv"), "--out", str(root / "model"), "--n-iter", str(N_ITER),
            "--checkpoint-dir", str(ckpt), "--checkpoint-every", "2", *ARGS, *extra]  # fmt: skip


def _signal_after_checkpoint(root, ckpt, sig, *extra, after: int = 0):
    """Start ``fit``, send ``sig`` once a checkpoint beyond step ``after`` exists."""
    proc = cli_popen(*_fit_args(root, ckpt, *extra))
    deadline = time.monotonic() + 300
    while not [p for p in ckpt.glob("step-*") if int(p.name[5:]) > after]:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.005)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.slow
def test_cli_sigint_then_sigkill_then_resume_equals_uninterrupted(tmp_path):
    make_table(300).to_csv(tmp_path / "d.csv", index=False)
    ckpt = tmp_path / "ckpt"
    # Ctrl-C: the current step ends, a checkpoint is saved, one message, exit 130, no model
    code, err = _signal_after_checkpoint(tmp_path, ckpt, signal.SIGINT)
    assert code == 130, err[-2000:]
    assert "interrupted at step" in err and "--resume" in err and "Traceback" not in err
    assert not (tmp_path / "model").exists()
    stopped = Checkpointer(ckpt, resume=True).latest_step()
    assert 0 < stopped < N_ITER
    # resumed, then killed outright: the last periodic checkpoint survives intact
    code, err = _signal_after_checkpoint(tmp_path, ckpt, signal.SIGKILL, "--resume", after=stopped)
    assert code == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (tmp_path / "model").exists()
    ck = Checkpointer(ckpt, resume=True)
    killed = ck.latest_step()  # verifies the checksum
    assert stopped < killed < N_ITER and killed % 2 == 0
    meta = json.loads((ck.path_for(killed) / "meta.json").read_text())
    assert meta["format"] == "equisynth-checkpoint" and meta["step"] == killed
    # resumed again to the end: the same model as one uninterrupted run
    run = cli(*_fit_args(tmp_path, ckpt, "--resume"), timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    reference = TabularDiffusionGenerator(n_iter=N_ITER, batch_size=32, random_state=0).fit(
        read_table(tmp_path / "d.csv"), condition_on=["y", "sex"]
    )
    assert same(weights(TabularDiffusionGenerator.load(tmp_path / "model")), weights(reference))


def test_cli_checkpoint_options_need_a_directory(tmp_path):
    make_table(50).to_csv(tmp_path / "d.csv", index=False)
    run = cli("fit", str(tmp_path / "d.csv"), "--out", str(tmp_path / "m"), "--resume", *ARGS)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "error: --checkpoint-every and --resume need --checkpoint-dir DIR"
    ]
