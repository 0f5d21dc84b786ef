"""End-to-end timings of issue 2: `equisynth rebalance` on patient_treatment, fit on diabetes130.

* ``rebalance``: the CLI command of the README on ``../shared/data/patient_treatment``
  (``--method mcrage``, default generator, ``--quiet``), run ``--repeats`` times in fresh
  processes; wall time of the whole command (start-up, reading, training, sampling, writing).
* ``diabetes``: the default :class:`~equisynth.TabularDiffusionGenerator` fitted on the full
  ``../shared/data/diabetes130`` table (101,766 rows, 50 columns; read with
  ``keep_default_na=False`` and ``?`` mapped to missing, as its README says) conditioned on
  ``readmitted`` x ``gender``, in a fresh process: fit wall time, sampling rate for 5,000 rows, and
  the peak resident memory of that process (``ru_maxrss``, which includes the data).

Usage::

    python benchmarks/bench_end_to_end.py --out bench-out/end_to_end.json [--skip-diabetes]
        [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

DIABETES_CHILD = r"""
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
t0 = time.perf_counter()
import pandas as pd
import torch
if int(sys.argv[2]):
    torch.set_num_threads(int(sys.argv[2]))
from equisynth.generators.tabular import TabularDiffusionGenerator
df = pd.read_csv(sys.argv[1], keep_default_na=False, low_memory=False)
df = df.mask(df == "?").infer_objects()
t1 = time.perf_counter()
c1 = time.process_time()
gen = TabularDiffusionGenerator(random_state=0).fit(df, condition_on=["readmitted", "gender"])
t2 = time.perf_counter()
c2 = time.process_time()
out = gen.sample(n=5000, random_state=0)
t3 = time.perf_counter()
assert list(out.columns) == list(df.columns)
print(json.dumps({
    "rows": len(df), "columns": df.shape[1], "read_s": t1 - t0, "fit_s": t2 - t1,
    "fit_cpu_s": c2 - c1,
    "n_iter": gen.n_iter, "sample_rows_per_s": 5000 / (t3 - t2),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "threads": torch.get_num_threads(),
    "categorical_levels": int(sum(gen.cardinalities_)), "numeric_columns": gen.d_num_,
}))
"""


def _env(threads: int | None) -> dict:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def bench_rebalance(repeats: int, threads: int | None) -> dict:
    src = DATA / "patient_treatment" / "patient_treatment.csv"
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(repeats):
            out = Path(tmp) / f"out{seed}.csv"
            cmd = [sys.executable, "-m", "equisynth", "rebalance", str(src), "--target", "SOURCE"]
            cmd += ["--sensitive", "SEX", "--method", "mcrage", "--seed", str(seed)]
            cmd += ["--out", str(out), "--quiet"]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, env=_env(threads))
            times.append(time.perf_counter() - t0)
    return {
        "command": "equisynth rebalance ../shared/data/patient_treatment/patient_treatment.csv "
        "--target SOURCE --sensitive SEX --method mcrage --seed S --out OUT --quiet",
        "wall_s": times,
        "median_s": statistics.median(times),
    }


def bench_diabetes(threads: int | None) -> dict:
    src = DATA / "diabetes130" / "diabetic_data.csv.gz"
    proc = subprocess.run(
        [sys.executable, "-c", DIABETES_CHILD, str(src), str(threads or 0)],
        check=True,
        capture_output=True,
        text=True,
        env=_env(threads),
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-diabetes", action="store_true")
    ap.add_argument("--skip-rebalance", action="store_true")
    a = ap.parse_args()
    res: dict = {"threads": a.threads}
    if not a.skip_rebalance:
        res["rebalance_patient_treatment"] = bench_rebalance(a.repeats, a.threads)
        r = res["rebalance_patient_treatment"]
        print(f"rebalance patient_treatment: median {r['median_s']:.1f} s over {a.repeats} runs")
    if not a.skip_diabetes:
        res["fit_diabetes130"] = d = bench_diabetes(a.threads)
        print(
            f"diabetes130 fit: {d['fit_s']:.0f} s ({d['fit_cpu_s']:.0f} s of CPU, "
            f"{d['n_iter']} steps), peak RSS "
            f"{d['peak_rss_mb']:.0f} MB, sampling {d['sample_rows_per_s']:.0f} rows/s"
        )
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
