"""Which C2ST classifier sees duplicated patients? hgb vs lr on patient_treatment women.

The female rows of ``../shared/data/patient_treatment`` are split into a small "kept" part
(10%, like the starved group of the quality yardstick) and the held-back rest. Each synthetic set
is compared with the held-back rows by :func:`equisynth.evaluation.quality.fidelity.c2st_auc`
with gradient boosting (``hgb``) and logistic regression (``lr``):

* real vs real: the two halves of the held-back rows (the floor);
* random oversampling: the kept rows drawn with replacement to the held-back size;
* SMOTE: imbalanced-learn's SMOTE interpolating among the kept rows (SEX constant, SOURCE kept as
  a 0/1 feature for the interpolation and rounded back).

Usage::

    python benchmarks/bench_c2st_classifiers.py [--seeds 0 1 2] [--keep 0.1]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE

from equisynth.evaluation.quality.fidelity import c2st_auc

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "patient_treatment"


def smote_rows(kept: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` SMOTE rows interpolated among ``kept`` (a dummy class supplies the minority label)."""
    x = kept.assign(SOURCE=(kept["SOURCE"] == "in").astype(float))
    dummy = x.iloc[:1].copy()
    dummy.loc[:, :] = 0.0
    big = pd.concat([x, *[dummy] * (len(x) + n)], ignore_index=True)
    y = np.r_[np.ones(len(x)), np.zeros(len(big) - len(x))]
    sm = SMOTE(sampling_strategy={1: len(x) + n}, random_state=seed)
    xr, _ = sm.fit_resample(big, y)
    new = xr.iloc[len(big) :].reset_index(drop=True)
    new["SOURCE"] = np.where(new["SOURCE"] >= 0.5, "in", "out")
    new["AGE"] = new["AGE"].round().astype(kept["AGE"].dtype)
    return new[kept.columns]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--keep", type=float, default=0.1)
    a = ap.parse_args()
    df = pd.read_csv(DATA / "patient_treatment.csv")
    women = df[df["SEX"] == "F"].drop(columns="SEX").reset_index(drop=True)
    scores: dict[tuple[str, str], list[float]] = {}
    for seed in a.seeds:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(women))
        n_keep = round(a.keep * len(women))
        kept = women.iloc[order[:n_keep]].reset_index(drop=True)
        held = women.iloc[order[n_keep:]].reset_index(drop=True)
        half = len(held) // 2
        sets = {
            "real vs real (halves of the held-back rows)": (held.iloc[:half], held.iloc[half:]),
            "random oversampling of the kept rows": (
                held,
                kept.iloc[rng.integers(0, len(kept), len(held))].reset_index(drop=True),
            ),
            "SMOTE from the kept rows": (held, smote_rows(kept, len(held), seed)),
        }
        for name, (ref, other) in sets.items():
            for clf in ("hgb", "lr"):
                auc = c2st_auc(ref, other, classifier=clf, random_state=seed).auc
                scores.setdefault((name, clf), []).append(auc)
    print(f"{len(women)} women; kept {n_keep} ({a.keep:.0%}), held back {len(women) - n_keep}")
    print(f"C2ST AUC, median [min, max] over seeds {a.seeds}\n")
    print("| synthetic vs held-back real | hgb | lr |\n|---|---|---|")
    for name in sets:
        cells = []
        for clf in ("hgb", "lr"):
            v = scores[(name, clf)]
            cells.append(f"{statistics.median(v):.3f} [{min(v):.3f}, {max(v):.3f}]")
        print(f"| {name} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
