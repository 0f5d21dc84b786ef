"""EHR generator at scale: 2 gloo ranks == 1 process with twice the batch; exact resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ehr_support import SMALL, make_task

from equisynth.diffusion.checkpoint import Checkpointer
from equisynth.exceptions import ConfigError, TrainingInterrupted
from equisynth.generators.ehr import HALOGenerator

WORKER = Path(__file__).with_name("ehr_ddp_worker.py")


def same(a: HALOGenerator, b: HALOGenerator) -> bool:
    """Every weight equal, bit for bit."""
    sa, sb = a.model_.state_dict(), b.model_.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def gap(a: HALOGenerator, b: HALOGenerator) -> float:
    """Largest weight difference, leaving out the attention key biases.

    A key bias adds the same score to every key of a query, so softmax ignores it: its exact
    gradient is 0 and Adam turns the float noise of that gradient into steps of size ``lr``
    that differ between summation orders without changing the model's function.
    """
    sa, sb = a.model_.state_dict(), b.model_.state_dict()
    d = a.d_model
    out = 0.0
    for k in sa:
        diff = (sa[k] - sb[k]).abs()
        if k.endswith("self_attn.in_proj_bias"):
            diff = torch.cat([diff[:d], diff[2 * d :]])
        out = max(out, float(diff.max()))
    return out


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process_with_twice_the_batch(tmp_path):
    """torchrun, 2 CPU ranks x batch 16 == 1 process x batch 32, fairness term included.

    The fairness loss is non-linear in the batch (group rates), so it must be computed on the
    global batch: a per-rank fairness term would not match. Rank 0's checkpoint then resumes
    on one process with the same global batch.
    """
    task = make_task()
    ckpt = tmp_path / "ckpt"
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(WORKER), str(tmp_path / "ddp"), "16", "3", str(ckpt)],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    ddp = HALOGenerator.load(tmp_path / "ddp")
    single = HALOGenerator(**{**SMALL, "batch_size": 32, "n_epochs": 3}).fit(task)
    other = HALOGenerator(**{**SMALL, "batch_size": 16, "n_epochs": 3}).fit(task)
    assert gap(ddp, single) < 1e-4  # float summation order only
    assert gap(other, single) > 1e-2  # a different batch is a different model
    for a, b in zip(ddp.history_, single.history_, strict=True):
        assert a["nll"] == pytest.approx(b["nll"], rel=1e-4)
        assert a["fairness"] == pytest.approx(b["fairness"], rel=1e-3, abs=1e-6)
    # the 2-process checkpoint resumes on 1 process (same global batch of 32 patients)
    kw = {**SMALL, "batch_size": 32, "n_epochs": 5}
    resumed = HALOGenerator(**kw).fit(task, checkpoint_dir=ckpt, resume=True)
    longer = HALOGenerator(**kw).fit(task)
    assert gap(resumed, longer) < 1e-4
    with pytest.raises(ConfigError, match="global batch of 32"):
        HALOGenerator(**{**kw, "batch_size": 16}).fit(task, checkpoint_dir=ckpt, resume=True)


def test_sigint_checkpoint_and_resume_equal_an_uninterrupted_fit(tmp_path, monkeypatch):
    task = make_task()
    kw = {**SMALL, "batch_size": 32, "n_epochs": 4, "dropout": 0.2}  # dropout: RNG state resumed
    reference = HALOGenerator(**kw).fit(task)
    assert same(HALOGenerator(**kw).fit(task), reference)  # fit is reproducible

    due = Checkpointer.due

    def due_and_interrupt(self, step):  # a real SIGINT in the middle of epoch 2
        if step == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return due(self, step)

    ckpt = tmp_path / "ckpt"
    with monkeypatch.context() as m:
        m.setattr(Checkpointer, "due", due_and_interrupt)
        with pytest.raises(TrainingInterrupted) as info:
            HALOGenerator(**kw).fit(task, checkpoint_dir=ckpt, checkpoint_every=4)
    assert info.value.step == 6 and info.value.signum == signal.SIGINT
    assert Checkpointer(ckpt, resume=True).steps() == [4, 6]
    resumed = HALOGenerator(**kw).fit(task, checkpoint_dir=ckpt, checkpoint_every=4, resume=True)
    assert same(resumed, reference)
    assert resumed.history_ == reference.history_
    a, b = resumed.sample(50, random_state=0), reference.sample(50, random_state=0)
    assert a.demographics.equals(b.demographics) and (a.label == b.label).all()
    # the checkpoint belongs to this run: other settings or data are refused
    with pytest.raises(ConfigError, match="fairness_lambda"):
        HALOGenerator(**{**kw, "fairness_lambda": 2.0}).fit(task, checkpoint_dir=ckpt, resume=True)
    with pytest.raises(ConfigError, match="data_sha256"):
        HALOGenerator(**kw).fit(make_task(seed=1), checkpoint_dir=ckpt, resume=True)
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        HALOGenerator(**kw).fit(task, checkpoint_dir=ckpt)
    with pytest.raises(ConfigError, match="checkpoint_dir"):
        HALOGenerator(**kw).fit(task, resume=True)
    # resuming with more epochs continues the same run
    longer = HALOGenerator(**{**kw, "n_epochs": 6}).fit(task)
    more = HALOGenerator(**{**kw, "n_epochs": 6}).fit(task, checkpoint_dir=ckpt, resume=True)
    assert same(more, longer)
