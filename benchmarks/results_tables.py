"""Print the Markdown tables of RESULTS.md from experiment output directories.

Reads ``results.csv`` of each ``--run`` directory (written by ``equisynth experiment ...``)
and prints, per run, mean +- SD [95% CI] of the chosen metrics, the per-group rates, and the
paired differences against the reference arm (``equisynth.evaluation.stats``).

Usage::

    python benchmarks/results_tables.py --run /work/runs/mcrage-rf-10 --reference imbalanced \
        --metrics accuracy f1 auroc balanced_accuracy worst_group_tpr disparate_impact
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from equisynth.evaluation.stats import paired_differences, summarize


def cell(row, ci=True) -> str:
    if row is None or pd.isna(row["mean"]):
        return "n/a"
    text = f"{row['mean']:.3f} +- {row['sd']:.3f}"
    return text + (f" [{row['ci_low']:.3f}, {row['ci_high']:.3f}]" if ci else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", type=Path, action="append", required=True)
    ap.add_argument("--reference", default="imbalanced")
    ap.add_argument("--metrics", nargs="+", default=["accuracy", "f1", "auroc"])
    ap.add_argument("--group-metrics", nargs="+", default=["tpr", "fpr"])
    ap.add_argument("--diff-metrics", nargs="+", default=None)
    a = ap.parse_args()
    for run in a.run:
        res = pd.read_csv(run / "results.csv")
        s = summarize(res)
        arms = list(dict.fromkeys(res["arm"]))
        seeds = sorted(int(v) for v in res["seed"].unique())
        print(f"\n### {run.name}: {len(seeds)} seeds ({seeds})\n")
        print("| arm | " + " | ".join(a.metrics) + " |")
        print("|---" * (len(a.metrics) + 1) + "|")
        for arm in arms:
            cells = []
            for m in a.metrics:
                sel = s[(s.arm == arm) & (s.metric == m) & (s.group == "all")]
                cells.append(cell(sel.iloc[0] if len(sel) else None))
            print(f"| {arm} | " + " | ".join(cells) + " |")
        groups = sorted(g for g in s.group.unique() if g != "all")
        print("\n| arm | " + " | ".join(f"{m} {g}" for m in a.group_metrics for g in groups) + " |")
        print("|---" * (len(a.group_metrics) * len(groups) + 1) + "|")
        for arm in arms:
            cells = []
            for m in a.group_metrics:
                for g in groups:
                    sel = s[(s.arm == arm) & (s.metric == m) & (s.group == g)]
                    cells.append(cell(sel.iloc[0] if len(sel) else None, ci=False))
            print(f"| {arm} | " + " | ".join(cells) + " |")
        refs = {arm: _reference(arm, arms, a.reference) for arm in arms}
        if any(r is not None for r in refs.values()):
            metrics = a.diff_metrics or a.metrics
            print(
                f"\nPaired differences against `{a.reference}` (of the same grid setting where "
                "there is one): mean [95% CI], paired t-test p, verdict\n"
            )
            print("| arm | reference | " + " | ".join(metrics) + " |")
            print("|---" * (len(metrics) + 2) + "|")
            for arm, ref in refs.items():
                if ref is None:
                    continue
                pair = res[res["arm"].isin([arm, ref])]
                d = paired_differences(pair, reference=ref)
                d = d[(d.group == "all") & (d.arm == arm)]
                cells = []
                for m in metrics:
                    sel = d[d.metric == m]
                    if not len(sel):
                        cells.append("n/a")
                        continue
                    r = sel.iloc[0]
                    cells.append(
                        f"{r['mean_diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] "
                        f"p={r['p_value']:.2g}, {r['verdict']}"
                    )
                print(f"| {arm} | {ref} | " + " | ".join(cells) + " |")


def _reference(arm: str, arms: list[str], reference: str) -> str | None:
    """``reference@setting`` for a grid arm when it exists, else ``reference``; None for itself."""
    _, sep, setting = arm.partition("@")
    ref = f"{reference}@{setting}" if sep and f"{reference}@{setting}" in arms else reference
    return None if ref == arm or ref not in arms else ref


if __name__ == "__main__":
    main()
