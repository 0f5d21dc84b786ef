"""Benchmark: one seed of the full MCRAGE protocol (all six arms), target <= 90 s on 2 cores.

Runs ``MCRAGEProtocol.run_seed`` with the settings of ``equisynth experiment mcrage``
(random forest, diffusion generator with ``n_iter=1000`` and checkpoint selection every
250 steps) ``--repeats`` times and reports the median wall time, the per-arm times, and
the ratio against a baseline measured in the same run (the ``imbalanced`` arm alone:
split, random forest, scoring), so that numbers from a busy machine can be compared.

Usage::

    python benchmarks/bench_mcrage_protocol.py [--repeats 3] [--seed 0] [--threads N] \
        [--data ../shared/data/patient_treatment/patient_treatment.csv] [--out bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data" / "patient_treatment" / "patient_treatment.csv"


def _protocol(data: Path, arms, n_iter: int):
    from equisynth.evaluation.datasets import load_patient_treatment
    from equisynth.evaluation.protocols import MCRAGEProtocol

    ds = load_patient_treatment(data)
    return MCRAGEProtocol(
        data=ds.frame,
        target=ds.target,
        positive=ds.positive,
        sensitive=list(ds.sensitive),
        arms=list(arms),
        classifier="rf",
        generator_params={"n_iter": n_iter},
        model_selection=True,
        eval_every=250,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-iter", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--out", type=Path, default=None, help="write the raw numbers as JSON")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"data file {args.data} not found; pass --data", file=sys.stderr)
        return 2

    import torch

    from equisynth.evaluation.protocols import MCRAGE_ARMS

    if args.threads:
        torch.set_num_threads(args.threads)
    full = _protocol(args.data, MCRAGE_ARMS, args.n_iter)
    baseline = _protocol(args.data, ["imbalanced"], args.n_iter)
    runs = []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        baseline.run_seed(args.seed)
        t_base = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = full.run_seed(args.seed)
        t_full = time.perf_counter() - t0
        runs.append({"full_s": t_full, "baseline_s": t_base, "arms_s": out.seconds})
        print(f"repeat {r}: full {t_full:.1f} s, baseline {t_base:.2f} s", file=sys.stderr)
    med_full = statistics.median(x["full_s"] for x in runs)
    med_base = statistics.median(x["baseline_s"] for x in runs)
    arm_med = {a: statistics.median(x["arms_s"][a] for x in runs) for a in MCRAGE_ARMS}
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    print(f"| measure | median of {args.repeats} (s) |")
    print("|---|---|")
    print(f"| one seed, all six arms | {med_full:.1f} |")
    print(f"| baseline: imbalanced arm alone | {med_base:.2f} |")
    print(f"| ratio full / baseline | {med_full / med_base:.0f} |")
    for arm, sec in arm_med.items():
        print(f"| arm `{arm}` | {sec:.1f} |")
    print(f"\n{info}")
    if args.out:
        args.out.write_text(json.dumps({"runs": runs, "info": info}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
