"""Data-parallel training: 2 gloo processes under torchrun train the same model as one process."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import make_table

from equisynth.diffusion.distributed import DistContext, current_context, init_distributed
from equisynth.exceptions import ConfigError
from equisynth.generators.tabular import TabularDiffusionGenerator
from equisynth.io import read_table


def test_context_shards_a_global_batch_into_equal_disjoint_slices():
    ranks = [DistContext(rank=r, world_size=4) for r in range(4)]
    slices = [c.shard(16) for c in ranks]
    covered = sorted(i for s in slices for i in range(16)[s])
    assert covered == list(range(16))
    assert all(len(range(16)[s]) == 4 for s in slices)
    assert ranks[0].is_main and not ranks[1].is_main
    with pytest.raises(ConfigError, match="evenly"):
        ranks[0].shard(10)
    # cuda becomes the local GPU in a multi-process job, cpu is left alone
    assert DistContext(rank=1, world_size=2, local_rank=1).local_device(
        torch.device("cuda")
    ) == torch.device("cuda", 1)
    assert DistContext().local_device(torch.device("cpu")) == torch.device("cpu")


def test_without_torchrun_everything_is_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_distributed("cpu") == DistContext()
    assert current_context().world_size == 1
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ConfigError, match="torchrun"):
        init_distributed("cpu")


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process_with_twice_the_batch(tmp_path):
    """torchrun, 2 CPU ranks x batch 32 == 1 process x batch 64 (weights equal up to float noise).

    The ranks also write a checkpoint (rank 0), which one process with batch 64 resumes.
    """
    data = tmp_path / "d.csv"
    make_table().to_csv(data, index=False)
    common = ["--target", "y", "--sensitive", "sex", "--n-iter", "30", "--seed", "0", "-q"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    ckpt = tmp_path / "ckpt"
    args = ["fit", str(data), "--out", str(tmp_path / "ddp"), "--batch-size", "32", *common,
            "--checkpoint-dir", str(ckpt)]  # fmt: skip
    run = subprocess.run(
        [*torchrun, "2", "-m", "equisynth", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    ddp = TabularDiffusionGenerator.load(tmp_path / "ddp")
    df = read_table(data)
    kw = {"n_iter": 30, "random_state": 0}
    single = TabularDiffusionGenerator(batch_size=64, **kw).fit(df, condition_on=["y", "sex"])
    other = TabularDiffusionGenerator(batch_size=32, **kw).fit(df, condition_on=["y", "sex"])

    def gap(a, b):
        sa, sb = a.model_.state_dict(), b.model_.state_dict()
        return max(float((sa[k] - sb[k]).abs().max()) for k in sa)

    assert gap(ddp, single) < 1e-4  # float summation order only
    assert gap(other, single) > 1e-2  # a different batch is a different model
    assert ddp.loss_history_ == pytest.approx(single.loss_history_, rel=1e-4)
    # and the models generate the same rows
    a = ddp.sample(n=200, random_state=1)
    b = single.sample(n=200, random_state=1)
    assert (a["sex"] == b["sex"]).all()
    assert (a["age"] - b["age"]).abs().mean() < 1.0
    # the 2-process checkpoint resumes on 1 process (same global batch of 64 rows)
    kw = {"n_iter": 40, "random_state": 0, "batch_size": 64}
    resumed = TabularDiffusionGenerator(**kw).fit(
        df, condition_on=["y", "sex"], checkpoint_dir=ckpt, resume=True
    )
    longer = TabularDiffusionGenerator(**kw).fit(df, condition_on=["y", "sex"])
    assert gap(resumed, longer) < 1e-4
    with pytest.raises(ConfigError, match="global batch of 64"):
        TabularDiffusionGenerator(**{**kw, "batch_size": 32}).fit(
            df, condition_on=["y", "sex"], checkpoint_dir=ckpt, resume=True
        )
