"""Fidelity on a large mixed table: diabetes130, held-out C2ST at several training lengths.

The full ``../shared/data/diabetes130`` table (read with ``keep_default_na=False`` and ``?`` mapped
to missing) is split 80/20 by patient (``patient_nbr``); the generator is fitted on the training
part conditioned on ``readmitted`` x ``gender`` and, at each checkpoint, ``--rows`` synthetic rows
are drawn with the strata of as many held-out rows and compared with those held-out rows by the
C2ST AUC (gradient boosting, 5 folds; the identifier columns ``encounter_id`` and ``patient_nbr``
are left out of the score).

Usage::

    python benchmarks/bench_quality_large.py --checkpoints 1000 3000 --set hidden=256,256 \
        --out bench-out/quality_large.csv
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import _parse_set
from equisynth.evaluation.quality.fidelity import c2st_auc

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "diabetes130"
IDS = ["encounter_id", "patient_nbr"]
COND = ["readmitted", "gender"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--checkpoints", type=int, nargs="+", default=[1000, 3000])
    ap.add_argument("--set", nargs="*", default=[])
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    from equisynth.generators.tabular import TabularDiffusionGenerator

    df = pd.read_csv(DATA / "diabetic_data.csv.gz", keep_default_na=False, low_memory=False)
    df = df.mask(df == "?").infer_objects()
    rng = np.random.default_rng(a.seed)
    patients = df["patient_nbr"].unique()
    test_patients = set(rng.choice(patients, size=len(patients) // 5, replace=False))
    is_test = df["patient_nbr"].isin(test_patients).to_numpy()
    train, test = df[~is_test], df[is_test]
    held = test.iloc[rng.permutation(len(test))[: a.rows]].reset_index(drop=True)
    params = _parse_set(a.set)
    steps = sorted(set(a.checkpoints))
    gen = TabularDiffusionGenerator(**(params | {"n_iter": steps[-1]}), random_state=a.seed)
    rows = []
    cols = [c for c in df.columns if c not in IDS]
    t0 = time.perf_counter()

    def score(step, fitted):
        if step not in steps:
            return
        t1 = time.perf_counter()
        synth = fitted.sample(held[COND], random_state=a.seed + 1)
        t2 = time.perf_counter()
        res = c2st_auc(held[cols], synth[cols], random_state=a.seed)
        print(
            f"step {step}: C2ST AUC {res.auc:.3f} (fold SD {res.auc_sd:.3f}); "
            f"elapsed {t1 - t0:.0f} s, sampling {a.rows / (t2 - t1):.0f} rows/s",
            flush=True,
        )
        rows.append([a.seed, repr(params), step, res.auc, res.auc_sd, t1 - t0])

    gen.fit(train, condition_on=COND, callback=score, eval_every=int(np.gcd.reduce(steps)))
    if a.out:
        frame = pd.DataFrame(rows, columns=["seed", "params", "step", "c2st_auc", "fold_sd", "s"])
        frame.to_csv(a.out, mode="a", header=not os.path.exists(a.out), index=False)


if __name__ == "__main__":
    main()
