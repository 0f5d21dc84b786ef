"""Sampling strategies compared downstream: fill-to-max (the paper's rule) vs equalize-groups.

Protocol (one seed): ``../shared/data/patient_treatment`` is split into train / test (70 / 30,
stratified on SEX x SOURCE); only ``--keep-frac`` of the female training rows are kept (as in
``bench_quality.py``); the starved table is rebalanced with each strategy and method; a
gradient-boosting classifier (scikit-learn defaults) is trained on it and scored on the real test
rows: accuracy, AUROC, true-positive rate (TPR, positive class ``in``) and false-positive rate per
sex, and the share of positives in the training table.

Usage::

    python benchmarks/bench_strategy.py --seeds 0 1 2 3 4 --methods mcrage smote random \
        --out bench-out/strategy.csv
    python benchmarks/bench_strategy.py --summary bench-out/strategy.csv
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import SENSITIVE, TARGET, load, starve

POSITIVE = "in"
STRATEGIES = ("none", "auto", "equalize-groups")


def _fit_score(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> dict[str, float]:
    X = pd.get_dummies(train.drop(columns=TARGET), columns=[SENSITIVE], dtype=float)
    Xt = pd.get_dummies(test.drop(columns=TARGET), columns=[SENSITIVE], dtype=float)[X.columns]
    y, yt = (train[TARGET] == POSITIVE).to_numpy(), (test[TARGET] == POSITIVE).to_numpy()
    model = HistGradientBoostingClassifier(random_state=seed).fit(X, y)
    proba = model.predict_proba(Xt)[:, 1]
    pred = proba >= 0.5
    out = {
        "train_positive_share": float(y.mean()),
        "accuracy": accuracy_score(yt, pred),
        "auroc": roc_auc_score(yt, proba),
        "predicted_positive_share": float(pred.mean()),
    }
    for group in ("F", "M"):
        g = (test[SENSITIVE] == group).to_numpy()
        out[f"tpr_{group}"] = float(pred[g & yt].mean())
        out[f"fpr_{group}"] = float(pred[g & ~yt].mean())
        out[f"train_rows_{group}"] = float((train[SENSITIVE] == group).sum())
    out["tpr_gap"] = abs(out["tpr_F"] - out["tpr_M"])
    return out


def _rebalance(starved, method, strategy, seed):
    from equisynth.resampling import make_resampler

    if strategy == "none":
        return starved
    kw = {"sensitive_features": [SENSITIVE], "sampling_strategy": strategy, "random_state": seed}
    sampler = make_resampler(method, **kw)
    X_res, y_res = sampler.fit_resample(starved.drop(columns=TARGET), starved[TARGET])
    return X_res.assign(**{TARGET: np.asarray(y_res)})


def summarise(table: pd.DataFrame) -> str:
    metrics = [
        "train_positive_share",
        "accuracy",
        "auroc",
        "tpr_F",
        "tpr_M",
        "tpr_gap",
        "fpr_F",
        "fpr_M",
    ]
    g = table.groupby(["method", "strategy", "metric"], sort=False)["value"]
    agg = pd.DataFrame({"mean": g.mean(), "sd": g.std(), "n": g.size()}).reset_index()
    lines = [
        "| method | strategy | seeds | " + " | ".join(metrics) + " |",
        "|---|---|---|" + "---|" * len(metrics),
    ]
    for (method, strategy), part in agg.groupby(["method", "strategy"], sort=False):
        cells = part.set_index("metric")
        vals = [f"{cells.loc[m, 'mean']:.3f} +- {cells.loc[m, 'sd']:.3f}" for m in metrics]
        lines.append(
            f"| {method} | {strategy} | {int(cells['n'].iloc[0])} | " + " | ".join(vals) + " |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--methods", nargs="+", default=["mcrage", "smote", "random"])
    ap.add_argument("--keep-frac", type=float, default=0.1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--summary", default=None)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if a.summary:
        print(summarise(pd.read_csv(a.summary)))
        return
    warnings.filterwarnings("ignore", category=UserWarning)
    df = load()
    rows = []
    from sklearn.model_selection import train_test_split

    for seed in a.seeds:
        starved, _, _ = starve(df, seed, 0.3, a.keep_frac)
        strata = df[TARGET] + "|" + df[SENSITIVE]
        _, test = train_test_split(df, test_size=0.3, stratify=strata, random_state=seed)
        for method in a.methods:
            for strategy in STRATEGIES:
                if strategy == "none" and method != a.methods[0]:
                    continue
                train = _rebalance(starved, method, strategy, seed)
                label = "-" if strategy == "none" else method
                for k, v in _fit_score(train, test, seed).items():
                    rows.append([seed, label, strategy, k, v])
        if a.out:
            new = pd.DataFrame(
                [r for r in rows if r[0] == seed],
                columns=["seed", "method", "strategy", "metric", "value"],
            )
            new.to_csv(a.out, mode="a", header=not os.path.exists(a.out), index=False)
    print(summarise(pd.DataFrame(rows, columns=["seed", "method", "strategy", "metric", "value"])))


if __name__ == "__main__":
    main()
