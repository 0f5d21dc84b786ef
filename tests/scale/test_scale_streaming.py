"""Streaming fit on Parquet: same schema / strata / encoders as in memory, exact resume, learns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import cli, make_table
from scipy import stats

from equisynth.data.streaming import scan_parquet
from equisynth.exceptions import InputFileError, SchemaError, StrataError
from equisynth.generators.tabular import TabularDiffusionGenerator

TINY = {"hidden": (32, 32), "dim_t": 16, "batch_size": 64, "random_state": 0}


def edge_case_table(n: int = 3000) -> pd.DataFrame:
    """Types whose per-batch view differs from the whole table's."""
    df = make_table(n, seed=1)
    rng = np.random.default_rng(2)
    df["few"] = rng.integers(0, 4, n).astype(float)  # integral floats, 4 levels -> categorical
    df["flag"] = rng.random(n) < 0.3  # bool -> binary
    df["cat"] = rng.choice(list("abcdefg"), n).astype(object)
    df.loc[rng.random(n) < 0.05, "cat"] = None  # categorical with missing values
    df["late_missing"] = rng.integers(0, 100, n)
    df["late_missing"] = df["late_missing"].astype(float)
    df.loc[n - 5 :, "late_missing"] = np.nan  # int64 in early batches, float64 in a full read
    df["two"] = rng.choice([3, 7], n)  # numeric with 2 values -> binary
    return df


def test_streaming_fit_has_the_in_memory_schema_strata_and_encoders(tmp_path):
    df = edge_case_table()
    path = tmp_path / "t.parquet"
    df.to_parquet(path, row_group_size=700)
    full = pd.read_parquet(path)
    kw = {**TINY, "n_iter": 2, "timesteps": "paper"}
    mem = TabularDiffusionGenerator(**kw).fit(full, condition_on=["y", "sex"])
    stream = TabularDiffusionGenerator(**kw).fit_parquet(
        path, condition_on=["y", "sex"], batch_rows=256
    )
    assert stream.schema_ == mem.schema_
    assert stream.strata_.get_state() == mem.strata_.get_state()
    assert stream.stratum_counts_ == mem.stratum_counts_
    assert stream.columns_ == mem.columns_ and stream.cardinalities_ == mem.cardinalities_
    a, b = mem.encoder_.arrays_, stream.encoder_.arrays_
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    # the paper's T and the sampling clip come from the encoded range, also exact
    assert stream.timesteps_ == mem.timesteps_ and stream.clip_x0_ == mem.clip_x0_
    # the fitted streaming model samples the table's columns and dtypes
    out = stream.sample(n=50, random_state=0)
    assert list(out.columns) == list(full.columns)
    assert out.dtypes.astype(str).tolist() == full.dtypes.astype(str).tolist()


def test_reservoir_is_a_uniform_sample_even_of_a_sorted_file(tmp_path):
    rng = np.random.default_rng(0)
    x = np.sort(rng.exponential(size=20_000))  # sorted: a "first rows" sample would be biased
    path = tmp_path / "sorted.parquet"
    pd.DataFrame({"g": rng.choice(["a", "b"], x.size), "x": x}).to_parquet(
        path, row_group_size=2000
    )
    scan = scan_parquet(path, batch_rows=1000, sample_rows=2000, random_state=0)
    sample = scan.samples["x"]
    assert len(sample) == 2000 and len(np.unique(sample)) == 2000  # without replacement
    assert stats.ks_2samp(sample, x).pvalue > 0.01
    assert scan.schema["x"].minimum == x.min() and scan.schema["x"].maximum == x.max()


def test_streamed_training_learns_a_conditional_distribution(tmp_path):
    """Rows sorted by group (so each row group holds one group); training must mix them."""
    rng = np.random.default_rng(0)
    n = 4000
    g = np.sort(rng.choice(["a", "b"], n))
    x = np.where(g == "a", -2.0, 2.0) + rng.normal(scale=0.5, size=n)
    path = tmp_path / "groups.parquet"
    pd.DataFrame({"g": g, "x": np.round(x, 4)}).to_parquet(path, row_group_size=500)
    gen = TabularDiffusionGenerator(**{**TINY, "n_iter": 400, "timesteps": 100})
    gen.fit_parquet(path, condition_on=["g"], batch_rows=500)
    out = gen.sample(pd.DataFrame({"g": ["a"] * 300 + ["b"] * 300}), random_state=0)
    means = out.groupby("g")["x"].mean()
    assert means["a"] == pytest.approx(-2.0, abs=0.5)
    assert means["b"] == pytest.approx(2.0, abs=0.5)


def test_streamed_training_resumes_exactly_mid_chunk(tmp_path):
    path = tmp_path / "t.parquet"
    make_table(1500).to_parquet(path, row_group_size=400)
    kw = {**TINY, "timesteps": 50}
    ckpt = tmp_path / "ckpt"
    # 13 steps stop in the middle of a chunk (ceil(300 / 64) = 5 steps per chunk)
    TabularDiffusionGenerator(**kw, n_iter=13).fit_parquet(
        path, condition_on=["y", "sex"], batch_rows=300, checkpoint_dir=ckpt
    )
    resumed = TabularDiffusionGenerator(**kw, n_iter=40).fit_parquet(
        path, condition_on=["y", "sex"], batch_rows=300, checkpoint_dir=ckpt, resume=True
    )
    direct = TabularDiffusionGenerator(**kw, n_iter=40).fit_parquet(
        path, condition_on=["y", "sex"], batch_rows=300
    )
    a, b = resumed.model_.state_dict(), direct.model_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the first run also logged its last step (13); the rest of the history is the same
    assert resumed.loss_history_[1:] == direct.loss_history_


def test_streaming_errors_name_the_problem(tmp_path):
    df = make_table(200)
    csv = tmp_path / "t.csv"
    df.to_csv(csv, index=False)
    with pytest.raises(InputFileError, match=r"not a \.parquet file"):
        scan_parquet(csv)
    bad = df.copy()
    bad.loc[3, "sex"] = None
    bad.to_parquet(tmp_path / "nan.parquet")
    with pytest.raises(StrataError, match="'sex' has missing"):
        scan_parquet(tmp_path / "nan.parquet", condition_on=["y", "sex"])
    df.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(SchemaError, match="'y' is declared 'continuous'"):
        scan_parquet(tmp_path / "t.parquet", overrides={"y": "continuous"})
    with pytest.raises(StrataError, match="'race'"):
        scan_parquet(tmp_path / "t.parquet", condition_on=["race"])
    run = cli("fit", str(csv), "--target", "y", "--sensitive", "sex", "--out",
              str(tmp_path / "m"), "--streaming")  # fmt: skip
    assert run.returncode == 2 and run.stderr.startswith("error: --streaming reads Parquet")
    assert len(run.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_streaming_fit_writes_a_model(tmp_path):
    path = tmp_path / "t.parquet"
    make_table(500).to_parquet(path, row_group_size=100)
    run = cli("fit", str(path), "--target", "y", "--sensitive", "sex", "--out",
              str(tmp_path / "m"), "--streaming", "--batch-rows", "128", "--n-iter", "5",
              "-q")  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    gen = TabularDiffusionGenerator.load(tmp_path / "m")
    assert (
        gen.stratum_counts_
        == TabularDiffusionGenerator(n_iter=1)
        .fit(pd.read_parquet(path), condition_on=["y", "sex"])
        .stratum_counts_
    )
