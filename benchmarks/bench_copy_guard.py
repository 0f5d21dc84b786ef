"""Cost of ``rebalance``'s privacy guard (exact-copy check) relative to writing the output.

The guard runs on every ``rebalance``; this measures it on a real table and puts it next to a
baseline measured in the same run: writing the rebalanced table as CSV with ``write_table``.

Usage::

    python benchmarks/bench_copy_guard.py [--data ../shared/data/diabetes130/diabetic_data.csv.gz]
        [--rows 20000] [--repeats 3] [--with-nn]

Synthetic rows are simulated by resampling real rows (a share of them perturbed), so that about
half of them are exact copies: the guard then does all of its work (search and drop).
Prints the median of ``--repeats`` runs of each step and their ratio. ``--with-nn`` also times
:func:`equisynth.evaluation.quality.privacy.drop_close_copies` (nearest neighbours over one-hot
features), which finds the same rows, once.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from equisynth.cli._copies import exact_copy_mask, guard_copies
from equisynth.io import write_table

DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "diabetes130"


def _median_seconds(func, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT / "diabetic_data.csv.gz")
    parser.add_argument("--rows", type=int, default=20000, help="real rows used (0: all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--with-nn", action="store_true", help="also time drop_close_copies")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    real = pd.read_csv(args.data, keep_default_na=False, na_values=["?"], low_memory=False)
    real = real.drop(columns=["encounter_id", "patient_nbr"], errors="ignore")
    if args.rows:
        real = real.sample(n=min(args.rows, len(real)), random_state=0).reset_index(drop=True)
    rng = np.random.default_rng(0)
    synth = real.sample(n=len(real) // 2, random_state=1).reset_index(drop=True)
    perturb = rng.random(len(synth)) < 0.5
    synth.loc[perturb, "num_lab_procedures"] = synth.loc[perturb, "num_lab_procedures"] + 1000
    rebalanced = pd.concat([real, synth], ignore_index=True)

    guard = _median_seconds(lambda: guard_copies(real, synth, drop=True), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.csv"
        write = _median_seconds(lambda: write_table(rebalanced, out, overwrite=True), args.repeats)
    kept = guard_copies(real, synth, drop=True)
    print(f"data: {args.data.name}, {len(real)} real x {real.shape[1]} columns, "
          f"{len(synth)} synthetic rows ({len(synth) - len(kept)} exact copies dropped)")  # fmt: skip
    print("| step | median seconds |")
    print("|---|---|")
    print(f"| guard_copies (exact-copy check + drop) | {guard:.3f} |")
    print(f"| write_table CSV of the {len(rebalanced)} rows (baseline) | {write:.3f} |")
    if args.with_nn:
        from equisynth.evaluation.quality.privacy import drop_close_copies

        start = time.perf_counter()
        _, dropped = drop_close_copies(synth, real)
        nn = time.perf_counter() - start
        same = bool((dropped == exact_copy_mask(real, synth)).all())
        print(f"| drop_close_copies (1 run; same rows flagged: {same}) | {nn:.3f} |")
    print(f"ratio guard / write: {guard / write:.2f}")


if __name__ == "__main__":
    main()
