"""Performance and group-fairness metrics of a binary classifier, fairlearn-style.

Every function takes ``y_true`` and ``y_pred`` (hard labels) or ``y_score``
(predicted probability of the positive class) and, for group metrics,
``sensitive_features`` as fairlearn does: a Series, a DataFrame with one column per
sensitive attribute (groups are then intersections, e.g. ``race=black & sex=female``),
a 1-d array, a 2-d array or a dict of arrays. Per-group counts come from fairlearn's
:class:`~fairlearn.metrics.MetricFrame`.

Groups too small to score are reported, not dropped: a group rate is ``NaN`` when its
denominator (rows, positives, negatives or predicted positives) has fewer than
``min_group_size`` rows, and :func:`group_metrics` says why in its ``status`` column.
Disparity metrics (disparate impact, worst-group TPR, equalized-odds and
demographic-parity differences) are taken over the groups where the rate is defined;
they are ``NaN`` when fewer than two groups (one for worst-group TPR) can be scored.

Differences from the reference notebooks: AUROC and AUPRC are computed from predicted
probabilities, not from hard labels (AUROC of hard labels equals balanced accuracy), and
worst-group TPR is the minimum over groups, not a mean.

Examples
--------
>>> import numpy as np, pandas as pd
>>> y_true = np.array([1, 1, 0, 0, 1, 1, 0, 0])
>>> y_pred = np.array([1, 0, 0, 0, 1, 1, 1, 0])
>>> sex = pd.Series(["F"] * 4 + ["M"] * 4, name="sex")
>>> worst_group_tpr(y_true, y_pred, sensitive_features=sex, min_group_size=1)
0.5
>>> disparate_impact(y_true, y_pred, sensitive_features=sex, min_group_size=1)
0.3333333333333333
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from equisynth.exceptions import ConfigError, DataError

__all__ = [
    "GROUP_RATE_METRICS",
    "OVERALL_METRICS",
    "classification_metrics",
    "demographic_parity_difference",
    "disparate_impact",
    "equalized_odds_difference",
    "fairness_metrics",
    "group_labels",
    "group_metrics",
    "score_predictions",
    "worst_group_tpr",
]

#: Overall metrics of :func:`classification_metrics`, in report order.
OVERALL_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "f1",
    "precision",
    "recall",
    "auroc",
    "auprc",
)
#: Per-group rates of :func:`group_metrics` with the count that is their denominator.
GROUP_RATE_METRICS = {
    "tpr": "n_positive",
    "fpr": "n_negative",
    "precision": "n_predicted_positive",
    "f1": "n_positive",
    "accuracy": "n",
    "selection_rate": "n",
}
#: Disparity metrics of :func:`fairness_metrics`, in report order.
FAIRNESS_METRICS = (
    "disparate_impact",
    "worst_group_tpr",
    "equalized_odds_difference",
    "demographic_parity_difference",
)
DEFAULT_MIN_GROUP_SIZE = 10


# ---------------------------------------------------------------------------- inputs
def _binary(y, pos_label, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise DataError(f"{name} is empty; metrics need at least one row")
    if pd.isna(arr).any():
        raise DataError(f"{name} has missing values; drop those rows before scoring")
    return arr == pos_label


def _check_labels(y_true, pos_label) -> np.ndarray:
    arr = np.asarray(y_true)
    labels = pd.unique(arr.ravel()) if arr.size else []
    if len(labels) > 2:
        raise DataError(
            f"y_true must be binary, got {len(labels)} classes: {sorted(map(str, labels))[:10]}"
        )
    if arr.size and not any(label == pos_label for label in labels) and len(labels) == 2:
        raise DataError(
            f"pos_label {pos_label!r} is not a class of y_true; its classes are "
            f"{sorted(map(str, labels))}"
        )
    return _binary(arr, pos_label, "y_true")


def _score(y_score, n: int) -> np.ndarray:
    arr = np.asarray(y_score, dtype=float)
    if arr.ndim == 2 and arr.shape[1] == 2:
        arr = arr[:, 1]
    if arr.shape != (n,):
        raise DataError(
            f"y_score must hold one probability of the positive class per row ({n}), "
            f"got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise DataError("y_score has missing or infinite values")
    return arr


def _sensitive_frame(sensitive_features, n: int | None) -> pd.DataFrame:
    sf = sensitive_features
    if isinstance(sf, pd.DataFrame):
        frame = sf.reset_index(drop=True)
    elif isinstance(sf, pd.Series):
        frame = sf.reset_index(drop=True).to_frame(sf.name if sf.name is not None else "group")
    elif isinstance(sf, Mapping):
        frame = pd.DataFrame({str(k): np.asarray(v) for k, v in sf.items()})
    else:
        arr = np.asarray(sf, dtype=object)
        if arr.ndim == 1:
            frame = pd.DataFrame({"sensitive_feature_0": arr})
        elif arr.ndim == 2:
            frame = pd.DataFrame(
                arr, columns=[f"sensitive_feature_{i}" for i in range(arr.shape[1])]
            )
        else:
            raise DataError(f"sensitive_features must be 1-d or 2-d, got shape {arr.shape}")
    if frame.shape[1] == 0:
        raise DataError("sensitive_features has no column; give at least one sensitive attribute")
    if n is not None and len(frame) != n:
        raise DataError(
            f"sensitive_features has {len(frame)} rows but y_true has {n}; they must align"
        )
    bad = [str(c) for c in frame.columns if frame[c].isna().any()]
    if bad:
        raise DataError(
            f"sensitive feature(s) {bad} have missing values; fill them (e.g. 'unknown') or drop rows"
        )
    return frame


def group_labels(sensitive_features, n: int | None = None) -> pd.Series:
    """One label per row for the intersection of the sensitive attributes.

    Examples
    --------
    >>> group_labels(pd.DataFrame({"race": ["a", "b"], "sex": ["F", "F"]})).tolist()
    ['race=a & sex=F', 'race=b & sex=F']
    """
    frame = _sensitive_frame(sensitive_features, n)
    parts = [f"{c}=" + frame[c].astype(str) for c in frame.columns]
    out = parts[0]
    for p in parts[1:]:
        out = out + " & " + p
    return out.rename("group")


def _check_min(min_group_size) -> int:
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, int | np.integer):
        raise ConfigError(f"min_group_size must be a positive integer, got {min_group_size!r}")
    if min_group_size < 1:
        raise ConfigError(f"min_group_size must be a positive integer, got {min_group_size!r}")
    return int(min_group_size)


# ---------------------------------------------------------------------------- overall
def classification_metrics(y_true, y_pred, y_score=None, *, pos_label: Any = 1) -> dict[str, float]:
    """Accuracy, balanced accuracy, F1, precision, recall, and AUROC / AUPRC from probabilities.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted labels.
    y_score : array-like of shape (n,) or (n, 2), optional
        Predicted probability of ``pos_label``. Without it AUROC and AUPRC are ``NaN``
        (they are never computed from hard labels).
    pos_label : default=1
        The positive class (for F1, precision, recall and the probabilities).

    Returns
    -------
    dict
        Keys :data:`OVERALL_METRICS`. AUROC / AUPRC are ``NaN`` when ``y_true`` holds a
        single class.

    Examples
    --------
    >>> m = classification_metrics([1, 0, 1, 0], [1, 0, 0, 0], [0.9, 0.2, 0.4, 0.3])
    >>> m["accuracy"], m["f1"], m["auroc"]
    (0.75, 0.6666666666666666, 1.0)
    """
    t = _check_labels(y_true, pos_label)
    p = _binary(y_pred, pos_label, "y_pred")
    if len(p) != len(t):
        raise DataError(f"y_pred has {len(p)} rows but y_true has {len(t)}")
    out = {
        "accuracy": float(skm.accuracy_score(t, p)),
        "balanced_accuracy": (
            float(skm.balanced_accuracy_score(t, p)) if t.any() and (~t).any() else np.nan
        ),
        "f1": float(skm.f1_score(t, p, zero_division=0)),
        "precision": float(skm.precision_score(t, p, zero_division=0)),
        "recall": float(skm.recall_score(t, p, zero_division=0)),
        "auroc": np.nan,
        "auprc": np.nan,
    }
    if y_score is not None:
        s = _score(y_score, len(t))
        if t.any() and (~t).any():
            out["auroc"] = float(skm.roc_auc_score(t, s))
            out["auprc"] = float(skm.average_precision_score(t, s))
    return out


# ---------------------------------------------------------------------------- groups
def _counts(name: str):
    def count(y_true, y_pred):
        t, p = np.asarray(y_true, bool), np.asarray(y_pred, bool)
        return {
            "n": t.size,
            "tp": np.sum(t & p),
            "fp": np.sum(~t & p),
            "fn": np.sum(t & ~p),
            "tn": np.sum(~t & ~p),
        }[name]

    count.__name__ = name
    return count


def group_metrics(
    y_true,
    y_pred,
    *,
    sensitive_features,
    pos_label: Any = 1,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
) -> pd.DataFrame:
    """Per-group counts and rates over the intersections of the sensitive attributes.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
    sensitive_features : Series, DataFrame, array or dict
        One or more sensitive attributes; groups are their observed combinations.
    pos_label : default=1
    min_group_size : int, default=10
        A rate is reported only when its denominator has at least this many rows
        (``tpr``/``f1``: positives; ``fpr``: negatives; ``precision``: predicted
        positives; ``accuracy``/``selection_rate``: rows); otherwise it is ``NaN``.

    Returns
    -------
    DataFrame
        Index ``group`` (labels like ``sex=F``, see :func:`group_labels`), one row per
        observed group, columns ``n, n_positive, n_negative, n_predicted_positive, tpr,
        fpr, precision, f1, accuracy, selection_rate, status``. ``status`` is ``"ok"`` or
        says which rates could not be scored and why.

    Examples
    --------
    >>> g = group_metrics([1, 1, 0, 0, 1, 0], [1, 0, 0, 1, 1, 0],
    ...                   sensitive_features=["a", "a", "a", "a", "b", "b"], min_group_size=1)
    >>> g[["n", "tpr", "fpr"]].to_dict("index")["sensitive_feature_0=a"]
    {'n': 4, 'tpr': 0.5, 'fpr': 0.5}
    """
    from fairlearn.metrics import MetricFrame

    min_size = _check_min(min_group_size)
    t = _check_labels(y_true, pos_label)
    p = _binary(y_pred, pos_label, "y_pred")
    if len(p) != len(t):
        raise DataError(f"y_pred has {len(p)} rows but y_true has {len(t)}")
    labels = group_labels(sensitive_features, len(t))
    frame = MetricFrame(
        metrics={k: _counts(k) for k in ("n", "tp", "fp", "fn", "tn")},
        y_true=t,
        y_pred=p,
        sensitive_features=labels,
    )
    c = frame.by_group.astype("int64")
    out = pd.DataFrame(index=c.index.rename("group"))
    out["n"] = c["n"]
    out["n_positive"] = c["tp"] + c["fn"]
    out["n_negative"] = c["fp"] + c["tn"]
    out["n_predicted_positive"] = c["tp"] + c["fp"]
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = {
            "tpr": c["tp"] / out["n_positive"],
            "fpr": c["fp"] / out["n_negative"],
            "precision": c["tp"] / out["n_predicted_positive"],
            "f1": 2 * c["tp"] / (2 * c["tp"] + c["fp"] + c["fn"]),
            "accuracy": (c["tp"] + c["tn"]) / out["n"],
            "selection_rate": out["n_predicted_positive"] / out["n"],
        }
    status = pd.Series([[] for _ in range(len(out))], index=out.index)
    for name, rate in rates.items():
        denom = out[GROUP_RATE_METRICS[name]]
        ok = denom >= min_size
        out[name] = rate.where(ok).astype(float)
        for g in out.index[~ok]:
            status[g].append(f"{name} ({GROUP_RATE_METRICS[name]}={int(denom[g])})")
    out["status"] = [
        "ok" if not s else f"too small (< {min_size}) for " + ", ".join(s) for s in status
    ]
    return out


def _spread(values: pd.Series, how: str) -> float:
    v = values.dropna()
    if len(v) < 2:
        return float("nan")
    if how == "ratio":
        hi = v.max()
        return float(v.min() / hi) if hi > 0 else float("nan")
    return float(v.max() - v.min())


def disparate_impact(
    y_true, y_pred, *, sensitive_features, pos_label: Any = 1, min_group_size: int = 1
) -> float:
    """Smallest group selection rate divided by the largest (1 = parity; fairlearn's
    ``demographic_parity_ratio``), over groups with at least ``min_group_size`` rows.

    ``NaN`` when fewer than two groups can be scored or no group is ever selected.

    Examples
    --------
    >>> disparate_impact([0, 0, 0, 0], [1, 1, 1, 0], sensitive_features=["a", "a", "b", "b"])
    0.5
    """
    g = group_metrics(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        pos_label=pos_label,
        min_group_size=min_group_size,
    )
    return _spread(g["selection_rate"], "ratio")


def demographic_parity_difference(
    y_true, y_pred, *, sensitive_features, pos_label: Any = 1, min_group_size: int = 1
) -> float:
    """Largest minus smallest group selection rate (0 = parity), as fairlearn's.

    Examples
    --------
    >>> demographic_parity_difference([0, 0, 0, 0], [1, 1, 1, 0],
    ...                               sensitive_features=["a", "a", "b", "b"])
    0.5
    """
    g = group_metrics(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        pos_label=pos_label,
        min_group_size=min_group_size,
    )
    return _spread(g["selection_rate"], "difference")


def worst_group_tpr(
    y_true, y_pred, *, sensitive_features, pos_label: Any = 1, min_group_size: int = 1
) -> float:
    """The minimum true-positive rate over groups with at least ``min_group_size`` positives.

    This is the minimum, not a mean over groups (the reference FairSynth code averaged).

    Examples
    --------
    >>> worst_group_tpr([1, 1, 1, 1], [1, 1, 1, 0], sensitive_features=["a", "a", "b", "b"])
    0.5
    """
    g = group_metrics(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        pos_label=pos_label,
        min_group_size=min_group_size,
    )
    v = g["tpr"].dropna()
    return float(v.min()) if len(v) else float("nan")


def equalized_odds_difference(
    y_true, y_pred, *, sensitive_features, pos_label: Any = 1, min_group_size: int = 1
) -> float:
    """The larger of the TPR spread and the FPR spread across groups (fairlearn's
    ``equalized_odds_difference``, ``agg="worst_case"``); 0 = equalized odds.

    Examples
    --------
    >>> equalized_odds_difference([1, 0, 1, 0], [1, 0, 0, 0],
    ...                           sensitive_features=["a", "a", "b", "b"])
    1.0
    """
    g = group_metrics(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        pos_label=pos_label,
        min_group_size=min_group_size,
    )
    return float(np.nanmax([_spread(g["tpr"], "difference"), _spread(g["fpr"], "difference")]))


def fairness_metrics(groups: pd.DataFrame) -> dict[str, float]:
    """Disparity metrics from a :func:`group_metrics` table (groups too small are excluded).

    Returns
    -------
    dict
        ``disparate_impact``, ``worst_group_tpr``, ``equalized_odds_difference``,
        ``demographic_parity_difference``, ``n_groups`` and ``n_groups_too_small`` (groups
        with at least one rate that could not be scored).
    """
    tpr = groups["tpr"].dropna()
    spreads = [_spread(groups["tpr"], "difference"), _spread(groups["fpr"], "difference")]
    return {
        "disparate_impact": _spread(groups["selection_rate"], "ratio"),
        "worst_group_tpr": float(tpr.min()) if len(tpr) else float("nan"),
        "equalized_odds_difference": (
            float(np.nanmax(spreads)) if not np.isnan(spreads).all() else float("nan")
        ),
        "demographic_parity_difference": _spread(groups["selection_rate"], "difference"),
        "n_groups": float(len(groups)),
        "n_groups_too_small": float((groups["status"] != "ok").sum()),
    }


# ---------------------------------------------------------------------------- tidy
def score_predictions(
    y_true,
    y_pred,
    y_score=None,
    *,
    sensitive_features,
    pos_label: Any = 1,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
) -> pd.DataFrame:
    """Every metric as a tidy table ``metric, group, value`` (``group="all"`` for overall).

    Overall rows: :data:`OVERALL_METRICS`, the disparity metrics of
    :func:`fairness_metrics`, ``n_groups`` and ``n_groups_too_small``. Per-group rows:
    the counts and rates of :func:`group_metrics` (rates of groups too small are ``NaN``
    rows, not missing rows, so a reader sees that the group exists).

    Examples
    --------
    >>> rows = score_predictions([1, 0, 1, 0], [1, 0, 0, 0], [0.9, 0.1, 0.4, 0.3],
    ...                          sensitive_features=pd.Series(list("aabb"), name="s"),
    ...                          min_group_size=1)
    >>> rows.query("metric == 'tpr'")[["group", "value"]].values.tolist()
    [['s=a', 1.0], ['s=b', 0.0]]
    """
    overall = classification_metrics(y_true, y_pred, y_score, pos_label=pos_label)
    groups = group_metrics(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        pos_label=pos_label,
        min_group_size=min_group_size,
    )
    rows = [(m, "all", v) for m, v in overall.items()]
    rows += [(m, "all", v) for m, v in fairness_metrics(groups).items()]
    columns = ["n", "n_positive", *GROUP_RATE_METRICS]
    for group, rec in groups[columns].iterrows():
        rows += [(m, str(group), float(rec[m])) for m in columns]
    return pd.DataFrame(rows, columns=["metric", "group", "value"])
