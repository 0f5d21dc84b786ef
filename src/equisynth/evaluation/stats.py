"""Statistics over seeds: mean, SD and confidence intervals per arm, paired tests against a reference.

Seeds are the unit of replication: each seed draws its own split, resampling, generator
and downstream model, so the spread over seeds is the spread a user would see when
repeating the whole experiment. Arms of one seed share the split, so arms are compared
with *paired* differences (arm minus reference, seed by seed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as st

from equisynth.exceptions import ConfigError, DataError

__all__ = ["describe_difference", "paired_differences", "summarize"]

_RESULT_COLUMNS = ("seed", "arm", "metric", "group", "value")
#: Gap metrics where a lower value means a fairer model.
LOWER_IS_FAIRER = ("equalized_odds_difference", "demographic_parity_difference")


def _check(results: pd.DataFrame) -> None:
    if not isinstance(results, pd.DataFrame):
        raise DataError(f"results must be a DataFrame, got {type(results).__name__}")
    missing = [c for c in _RESULT_COLUMNS if c not in results.columns]
    if missing:
        raise DataError(
            f"results lack column(s) {missing}; expected the tidy table seed, arm, metric, "
            "group, value of results.csv"
        )


def _t_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    mean, sd = float(np.mean(values)), float(np.std(values, ddof=1))
    if sd == 0:
        return mean, mean
    half = float(st.t.ppf(0.5 + confidence / 2, n - 1)) * sd / np.sqrt(n)
    return mean - half, mean + half


def summarize(results: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Mean, SD and t-based confidence interval over seeds for every (arm, metric, group).

    Parameters
    ----------
    results : DataFrame
        Tidy table ``seed, arm, metric, group, value``.
    confidence : float, default=0.95

    Returns
    -------
    DataFrame
        Columns ``arm, metric, group, n, n_missing, mean, sd, ci_low, ci_high``; ``n`` counts
        the seeds with a value (``NaN`` values, e.g. a group too small in that seed, are
        counted in ``n_missing``). Arms keep their order of appearance. ``sd`` and the
        interval are ``NaN`` with a single seed.

    Examples
    --------
    >>> r = pd.DataFrame({"seed": [0, 1, 2], "arm": "a", "metric": "f1", "group": "all",
    ...                   "value": [0.5, 0.6, 0.7]})
    >>> s = summarize(r).iloc[0]
    >>> round(s["mean"], 3), round(s["sd"], 3), round(s["ci_low"], 3)
    (0.6, 0.1, 0.352)
    """
    _check(results)
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence!r}")
    arm_order = list(dict.fromkeys(results["arm"]))
    records = []
    for (arm, metric, group), part in results.groupby(
        ["arm", "metric", "group"], sort=False, dropna=False
    ):
        values = part["value"].to_numpy(dtype=float)
        ok = values[~np.isnan(values)]
        low, high = _t_interval(ok, confidence)
        records.append(
            {
                "arm": arm,
                "metric": metric,
                "group": group,
                "n": len(ok),
                "n_missing": int(len(values) - len(ok)),
                "mean": float(np.mean(ok)) if len(ok) else float("nan"),
                "sd": float(np.std(ok, ddof=1)) if len(ok) > 1 else float("nan"),
                "ci_low": low,
                "ci_high": high,
            }
        )
    out = pd.DataFrame.from_records(records)
    out["_order"] = out["arm"].map({a: i for i, a in enumerate(arm_order)})
    return out.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaN entries are left out and stay NaN)."""
    out = np.full(len(p), np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    if not len(idx):
        return out
    order = idx[np.argsort(p[idx])]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def paired_differences(
    results: pd.DataFrame,
    *,
    reference: str,
    metrics: Sequence[str] | None = None,
    groups: Sequence[str] = ("all",),
    confidence: float = 0.95,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Seed-by-seed differences ``arm - reference`` with a t-interval and a paired t-test.

    Parameters
    ----------
    results : DataFrame
        Tidy table ``seed, arm, metric, group, value``.
    reference : str
        The arm every other arm is compared with (``imbalanced`` in the MCRAGE protocol,
        ``real`` in the generic one).
    metrics : sequence of str, optional
        Default: every metric of ``groups``.
    groups : sequence of str, default=("all",)
    confidence, alpha : float
        Interval level and test level of the verdict.

    Returns
    -------
    DataFrame
        Columns ``arm, metric, group, n, mean_diff, sd_diff, ci_low, ci_high, p_value,
        p_wilcoxon, p_holm, verdict``. ``p_value`` is the two-sided paired t-test,
        ``p_wilcoxon`` the Wilcoxon signed-rank test (no normality assumption), ``p_holm``
        the t-test p-value Holm-adjusted over the arms compared on the same metric and
        group. ``verdict`` is ``"higher"`` / ``"lower"`` when the interval excludes 0 and
        ``p_value < alpha``, ``"within noise"`` otherwise, ``"identical"`` when every
        difference is 0, and ``"too few seeds"`` below 2 paired seeds.

    Examples
    --------
    >>> r = pd.DataFrame({"seed": [0, 1, 2, 0, 1, 2], "arm": ["ref"] * 3 + ["b"] * 3,
    ...                   "metric": "f1", "group": "all",
    ...                   "value": [0.5, 0.6, 0.7, 0.6, 0.7, 0.81]})
    >>> paired_differences(r, reference="ref")[["arm", "verdict"]].values.tolist()
    [['b', 'higher']]
    """
    _check(results)
    arms = list(dict.fromkeys(results["arm"]))
    if reference not in arms:
        raise ConfigError(f"reference arm {reference!r} is not in the results; arms: {arms}")
    sel = results[results["group"].isin(list(groups))]
    if metrics is not None:
        sel = sel[sel["metric"].isin(list(metrics))]
    wide = sel.pivot_table(
        index=["metric", "group", "seed"], columns="arm", values="value", aggfunc="first"
    )
    records = []
    for (metric, group), part in wide.groupby(level=["metric", "group"], sort=False):
        if reference not in part.columns:
            continue
        for arm in arms:
            if arm == reference or arm not in part.columns:
                continue
            d = (part[arm] - part[reference]).dropna().to_numpy(dtype=float)
            rec = {"arm": arm, "metric": metric, "group": group, "n": len(d)}
            rec["mean_diff"] = float(np.mean(d)) if len(d) else float("nan")
            rec["sd_diff"] = float(np.std(d, ddof=1)) if len(d) > 1 else float("nan")
            rec["ci_low"], rec["ci_high"] = _t_interval(d, confidence)
            rec["p_value"] = rec["p_wilcoxon"] = float("nan")
            if len(d) < 2:
                rec["verdict"] = "too few seeds"
            elif np.all(d == 0):
                rec["verdict"] = "identical"
                rec["p_value"] = rec["p_wilcoxon"] = 1.0
            else:
                if rec["sd_diff"] > 0:
                    rec["p_value"] = float(st.ttest_1samp(d, 0.0).pvalue)
                else:  # constant non-zero difference
                    rec["p_value"] = 0.0
                nonzero = d[d != 0]
                if len(nonzero):
                    rec["p_wilcoxon"] = float(st.wilcoxon(nonzero).pvalue)
                significant = rec["p_value"] < alpha and not (rec["ci_low"] <= 0 <= rec["ci_high"])
                rec["verdict"] = (
                    ("higher" if rec["mean_diff"] > 0 else "lower")
                    if significant
                    else "within noise"
                )
            records.append(rec)
    columns = [
        "arm",
        "metric",
        "group",
        "n",
        "mean_diff",
        "sd_diff",
        "ci_low",
        "ci_high",
        "p_value",
        "p_wilcoxon",
        "p_holm",
        "verdict",
    ]
    out = pd.DataFrame.from_records(records, columns=[c for c in columns if c != "p_holm"])
    metric_order = list(metrics) if metrics is not None else list(dict.fromkeys(sel["metric"]))
    out["_m"] = out["metric"].map({m: i for i, m in enumerate(metric_order)})
    out["_a"] = out["arm"].map({a: i for i, a in enumerate(arms)})
    out = out.sort_values(["_m", "group", "_a"], kind="stable").drop(columns=["_m", "_a"])
    out = out.reset_index(drop=True)
    out["p_holm"] = np.nan
    for _, idx in out.groupby(["metric", "group"], sort=False).groups.items():
        out.loc[idx, "p_holm"] = _holm(out.loc[idx, "p_value"].to_numpy(dtype=float))
    return out[columns]


def describe_difference(row: pd.Series, *, reference: str, digits: int = 3) -> str:
    """One plain sentence for a row of :func:`paired_differences`.

    Examples
    --------
    >>> row = pd.Series({"arm": "smote", "metric": "f1", "group": "all", "n": 10,
    ...                  "mean_diff": 0.004, "ci_low": -0.01, "ci_high": 0.018,
    ...                  "p_value": 0.52, "verdict": "within noise"})
    >>> describe_difference(row, reference="imbalanced")
    'smote vs imbalanced, f1: +0.004 (95% CI -0.010 to +0.018, p = 0.52, 10 seeds): within noise.'
    """
    if row["verdict"] == "too few seeds":
        return (
            f"{row['arm']} vs {reference}, {row['metric']}: {row['n']} paired seed(s), "
            "too few for a test."
        )
    f = f"{{:+.{digits}f}}"
    direction = " (lower is fairer)" if row["metric"] in LOWER_IS_FAIRER else ""
    return (
        f"{row['arm']} vs {reference}, {row['metric']}: {f.format(row['mean_diff'])} "
        f"(95% CI {f.format(row['ci_low'])} to {f.format(row['ci_high'])}, "
        f"p = {row['p_value']:.2g}, {row['n']} seeds): {row['verdict']}{direction}."
    )
