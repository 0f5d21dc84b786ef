"""Scaling benchmark: training time and peak memory against rows; DDP on CPU vs one process.

Tables of 10k, 100k and 1M rows are resampled (with replacement, seeded) from the real
Diabetes 130-US hospitals table (``../shared/data/diabetes130``, read with
``keep_default_na=False`` and ``"?"`` mapped to missing; the two identifier columns are
dropped) and written as Parquet (row groups of 65,536 rows) to a scratch directory.
Each measurement runs in a fresh process that reports its wall time and peak RSS:

* ``stream``: ``TabularDiffusionGenerator.fit_parquet`` (scan + training), one epoch;
* ``memory``: ``pd.read_parquet`` + ``TabularDiffusionGenerator.fit``, one epoch;
* ``ddp``: 2 gloo processes under ``torchrun`` (batch 512 each, 1 thread each) vs one
  process (batch 1024, 2 threads), fixed number of steps, training time only.

A run trains ``ceil(epochs * rows / 1024)`` steps of batch 1024 (``--epochs``, default 1), so
the training time should grow linearly with the rows; the streaming fit's memory should not
grow. Every process uses ``--threads`` torch threads (default 1: on a shared, oversubscribed
CPU two OpenMP threads per process were 9x slower than one).

Usage::

    python benchmarks/bench_scaling.py --out bench_scaling.json [--sizes 10000 100000 1000000]
        [--scratch /tmp/equisynth-bench] [--skip-memory-above 1000000] [--ddp-steps 60]
        [--epochs 1.0] [--threads 1] [--repeat 3]

Every measurement runs ``--repeat`` times (rounds over all measurements); the tables give
medians. Prints Markdown tables and writes the raw numbers as JSON to ``--out``
(``python benchmarks/bench_scaling.py report bench_scaling.json`` prints them again).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIABETES = ROOT / ".." / "shared" / "data" / "diabetes130" / "diabetic_data.csv.gz"
TARGET, SENSITIVE = "readmitted", ["race", "gender"]
BATCH = 1024
THREADS = 1  # set by --threads; torchrun gives each process 1 thread


def peak_rss_mb() -> float:
    """Peak resident memory of this process image (VmHWM).

    Not ``getrusage().ru_maxrss``: Linux carries that over ``exec`` from the forked parent,
    so a child of a big parent would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ----------------------------------------------------------------- data
def prepare(scratch: Path, sizes: list[int]) -> dict[int, Path]:
    import numpy as np
    import pandas as pd

    scratch.mkdir(parents=True, exist_ok=True)
    paths = {n: scratch / f"diabetes_{n}.parquet" for n in sizes}
    if all(p.exists() for p in paths.values()):
        return paths
    df = pd.read_csv(DIABETES, keep_default_na=False, low_memory=False)
    df = df.replace("?", np.nan).drop(columns=["encounter_id", "patient_nbr"])
    df = df.dropna(subset=[TARGET, *SENSITIVE]).reset_index(drop=True)
    for col in df.columns:  # the numeric columns read as text because of "?" / "None"
        if df[col].dtype == object:
            conv = pd.to_numeric(df[col], errors="coerce")
            if conv.notna().sum() == df[col].notna().sum():
                df[col] = conv
    rng = np.random.default_rng(0)
    for n, path in paths.items():
        if not path.exists():
            rows = rng.integers(0, len(df), n)
            df.iloc[rows].reset_index(drop=True).to_parquet(path, row_group_size=65_536)
    return paths


# ----------------------------------------------------------------- one measurement
def measure(mode: str, path: Path, n_iter: int, batch: int) -> dict:
    import pandas as pd
    import torch

    from equisynth.diffusion.distributed import init_distributed, shutdown_distributed
    from equisynth.diffusion.trainer import Trainer
    from equisynth.generators.tabular import TabularDiffusionGenerator

    ctx = init_distributed("cpu")
    gen = TabularDiffusionGenerator(n_iter=n_iter, batch_size=batch, random_state=0)
    train_seconds, train_cpu = [], []
    fit_batches = Trainer.fit_batches

    def timed(self, *a, **kw):  # time the training loop alone (data preparation excluded)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return fit_batches(self, *a, **kw)
        finally:
            train_seconds.append(time.perf_counter() - t0)
            train_cpu.append(time.process_time() - c0)

    Trainer.fit_batches = timed
    start, cpu_start = time.perf_counter(), time.process_time()
    if mode == "stream":
        gen.fit_parquet(path, condition_on=[TARGET, *SENSITIVE])
    else:
        df = pd.read_parquet(path)
        gen.fit(df, condition_on=[TARGET, *SENSITIVE])
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    out = {
        "mode": mode,
        "rows": int(path.stem.split("_")[-1]),
        "n_iter": n_iter,
        "batch_per_process": batch,
        "processes": ctx.world_size,
        "threads": torch.get_num_threads(),
        "seconds": seconds,
        "train_seconds": train_seconds[0],
        "cpu_seconds": cpu_seconds,
        "train_cpu_seconds": train_cpu[0],
        "peak_rss_mb": peak_rss_mb(),
        "d_in": gen.d_num_ + sum(gen.cardinalities_),
    }
    shutdown_distributed()
    return out


def scan_memory(path: Path, trace: bool) -> dict:
    """Peak RSS of one ``scan_parquet`` pass (and, with ``trace``, live traced memory after it)."""
    import gc
    import tracemalloc

    import pyarrow as pa

    from equisynth.data.streaming import scan_parquet

    before = peak_rss_mb()
    if trace:
        tracemalloc.start()
    scan_parquet(path, condition_on=[TARGET, *SENSITIVE])
    out = {"file": path.name, "arrow_pool": pa.default_memory_pool().backend_name,
           "peak_rss_mb_before": before, "peak_rss_mb_after": peak_rss_mb()}  # fmt: skip
    if trace:
        gc.collect()
        live, peak = tracemalloc.get_traced_memory()
        out.update(traced_live_mb=live / 2**20, traced_peak_mb=peak / 2**20)
    return out


def run_child(args: list[str], torchrun: int = 0) -> dict:
    cmd = [sys.executable, __file__, "measure", *args]
    if torchrun:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", str(torchrun), __file__, "measure", *args]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS))
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd")
    m = sub.add_parser("measure")
    m.add_argument("mode", choices=["stream", "memory"])
    m.add_argument("path", type=Path)
    m.add_argument("--n-iter", type=int, required=True)
    m.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--out", type=Path, default=Path("bench_scaling.json"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/equisynth-bench"))
    parser.add_argument("--skip-memory-above", type=int, default=1_000_000)
    parser.add_argument("--ddp-steps", type=int, default=60)
    parser.add_argument("--epochs", type=float, default=1.0, help="Passes over the rows")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads per process")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of every measurement")
    sc = sub.add_parser("scan", help="peak memory of scan_parquet alone on one file")
    sc.add_argument("path", type=Path)
    sc.add_argument("--trace", action="store_true", help="also count live memory (tracemalloc)")
    r = sub.add_parser("report", help="print the tables of an earlier --out JSON")
    r.add_argument("json", type=Path)
    args = parser.parse_args()
    if args.cmd == "scan":
        print(json.dumps(scan_memory(args.path, args.trace)))
        return
    if args.cmd == "report":
        print_tables(json.loads(args.json.read_text()))
        return
    global THREADS
    THREADS = args.threads
    if args.cmd == "measure":
        rank = int(os.environ.get("RANK", "0"))
        result = measure(args.mode, args.path, args.n_iter, args.batch)
        if rank == 0:
            print(json.dumps(result), flush=True)
        return
    if not DIABETES.is_file():
        sys.exit(f"skipped: {DIABETES} not found (see ../shared/data/README.md)")
    paths = prepare(args.scratch, args.sizes)
    results, ddp = [], []
    mid = paths[sorted(paths)[len(paths) // 2]]
    for rep in range(args.repeat):  # every measurement once per round, so drifts hit all alike
        for n, path in paths.items():
            steps = math.ceil(args.epochs * n / BATCH)
            modes = ["stream"] + (["memory"] if n <= args.skip_memory_above else [])
            for mode in modes:
                r = {**run_child([mode, str(path), "--n-iter", str(steps)]), "repeat": rep}
                results.append(r)
                print(f"{rep}: {mode:>6} {n:>9} rows: {r['seconds']:8.1f} s, "
                      f"{r['cpu_seconds']:8.1f} s CPU, {r['peak_rss_mb']:7.0f} MiB", flush=True)  # fmt: skip
        for batch, procs in ((BATCH, 0), (BATCH // 2, 2)):
            r = run_child(
                ["memory", str(mid), "--n-iter", str(args.ddp_steps), "--batch", str(batch)],
                torchrun=procs,
            )
            ddp.append({**r, "repeat": rep})
            print(f"{rep}: ddp {r['processes']} process(es) x batch {r['batch_per_process']}: "
                  f"{r['train_seconds']:.1f} s training", flush=True)  # fmt: skip
    report = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "results": results,
        "ddp": ddp,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_tables(report)


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def _groups(rows: list[dict], key) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def print_tables(report: dict) -> None:
    """The Markdown tables of BENCHMARKS.md from a report (also: ``report FILE.json``).

    Cells are medians over the repeats (``runs``); peak RSS also gives the range.
    """
    print("\n| mode | rows | steps | runs | fit wall (s) | fit CPU (s) | training CPU (s) "
          "| fit CPU s per 1k rows | peak RSS (MiB), median [min, max] |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (mode, rows), rs in _groups(report["results"], lambda r: (r["mode"], r["rows"])).items():
        med = {k: _median([r[k] for r in rs]) for k in
               ("seconds", "cpu_seconds", "train_cpu_seconds", "peak_rss_mb")}  # fmt: skip
        rss = [r["peak_rss_mb"] for r in rs]
        print(f"| {mode} | {rows:,} | {rs[0]['n_iter']} | {len(rs)} | {med['seconds']:.1f} "
              f"| {med['cpu_seconds']:.1f} | {med['train_cpu_seconds']:.1f} "
              f"| {med['cpu_seconds'] / rows * 1000:.3f} "
              f"| {med['peak_rss_mb']:.0f} [{min(rss):.0f}, {max(rss):.0f}] |")  # fmt: skip
    print("\n| processes x batch | threads each | steps | runs | training wall (s) | rows/s "
          "| rank 0 training CPU (s) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    by_procs = _groups(report["ddp"], lambda r: r["processes"])
    for procs, rs in by_procs.items():
        wall = _median([r["train_seconds"] for r in rs])
        rows_s = rs[0]["n_iter"] * rs[0]["batch_per_process"] * procs / wall
        print(f"| {procs} x {rs[0]['batch_per_process']} | {rs[0]['threads']} | {rs[0]['n_iter']} "
              f"| {len(rs)} | {wall:.1f} | {rows_s:,.0f} "
              f"| {_median([r['train_cpu_seconds'] for r in rs]):.1f} |")  # fmt: skip
    if 1 in by_procs and 2 in by_procs:
        pairs = zip(by_procs[1], by_procs[2], strict=False)
        ratios = [a["train_seconds"] / b["train_seconds"] for a, b in pairs]
        print(
            f"\nSpeed-up of 2 processes, median of per-round ratios: {_median(ratios):.2f}x "
            f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})"
        )


if __name__ == "__main__":
    main()
