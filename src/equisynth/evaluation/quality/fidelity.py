"""Fidelity of synthetic tables: do synthetic rows look like real rows, overall and per stratum?

Every function takes two DataFrames with the same columns (``real``, ``synth``). The report is a
tidy long table with columns ``metric, stratum, column, value`` (``stratum`` is ``"all"`` for the
whole table, ``column`` is ``""`` for table-level metrics and ``"a|b"`` for pairs).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import NearestNeighbors

from equisynth._utils import as_numpy_rng, seed_from_rng
from equisynth.evaluation.quality._features import (
    FeatureSpace,
    _as_labels,
    categorical_columns,
    check_same_columns,
)
from equisynth.exceptions import ConfigError, DataError

__all__ = [
    "C2STResult",
    "association_differences",
    "c2st_auc",
    "column_distances",
    "fidelity_report",
    "knn_precision_recall",
    "stratum_labels",
    "tstr_auc",
]

logger = logging.getLogger(__name__)
REPORT_COLUMNS = ["metric", "stratum", "column", "value"]


class C2STResult(NamedTuple):
    """Cross-validated AUC of a real-vs-synthetic classifier (0.5: indistinguishable)."""

    auc: float
    auc_sd: float
    n_per_class: int


def column_distances(real: pd.DataFrame, synth: pd.DataFrame) -> pd.DataFrame:
    """Per-column distance: KS statistic (numeric) or total variation distance (categorical).

    Both lie in [0, 1]; 0 means identical marginals. Missing values count as a level for
    categorical columns and are ignored by KS (their share is reported as ``missing_diff``).

    Examples
    --------
    >>> real = pd.DataFrame({"x": [1.0, 2.0, 3.0], "g": ["a", "b", "b"]})
    >>> column_distances(real, real)["value"].tolist()
    [0.0, 0.0]
    """
    check_same_columns(real, synth)
    cats = set(categorical_columns(real))
    rows = []
    for col in real.columns:
        if col in cats:
            p = _as_labels(real[col]).value_counts(normalize=True)
            q = _as_labels(synth[col]).value_counts(normalize=True)
            tv = 0.5 * float(p.sub(q, fill_value=0.0).abs().sum())
            rows.append(("tv", col, tv))
            continue
        a = pd.to_numeric(real[col], errors="coerce").to_numpy(dtype=float)
        b = pd.to_numeric(synth[col], errors="coerce").to_numpy(dtype=float)
        a_obs, b_obs = a[~np.isnan(a)], b[~np.isnan(b)]
        ks = float(stats.ks_2samp(a_obs, b_obs).statistic) if a_obs.size and b_obs.size else 1.0
        rows.append(("ks", col, ks))
        if np.isnan(a).any() or np.isnan(b).any():
            rows.append(("missing_diff", col, abs(float(np.isnan(a).mean() - np.isnan(b).mean()))))
    return pd.DataFrame(rows, columns=["metric", "column", "value"])


def _association(df: pd.DataFrame, a: str, b: str, cats: set[str]) -> float:
    """Spearman |rho| (num-num), Cramér's V (cat-cat) or correlation ratio eta (num-cat)."""
    if a in cats and b in cats:
        table = pd.crosstab(_as_labels(df[a]), _as_labels(df[b])).to_numpy()
        if min(table.shape) < 2:
            return 0.0
        chi2 = stats.chi2_contingency(table, correction=False)[0]
        return float(np.sqrt(chi2 / (table.sum() * (min(table.shape) - 1))))
    if a in cats or b in cats:
        cat, num = (a, b) if a in cats else (b, a)
        y = pd.to_numeric(df[num], errors="coerce")
        ok = y.notna()
        y, g = y[ok].to_numpy(dtype=float), _as_labels(df[cat][ok])
        if y.size < 2 or y.var() == 0:
            return 0.0
        means = pd.Series(y).groupby(g.to_numpy()).agg(["mean", "count"])
        between = float((means["count"] * (means["mean"] - y.mean()) ** 2).sum())
        return float(np.sqrt(between / (y.var() * y.size)))
    x = pd.to_numeric(df[a], errors="coerce")
    y = pd.to_numeric(df[b], errors="coerce")
    ok = x.notna() & y.notna()
    if ok.sum() < 3 or x[ok].nunique() < 2 or y[ok].nunique() < 2:
        return 0.0
    return float(stats.spearmanr(x[ok], y[ok]).statistic)


def association_differences(real: pd.DataFrame, synth: pd.DataFrame) -> pd.DataFrame:
    """Absolute difference of pairwise association between real and synthetic tables.

    Association is Spearman's rho for two numeric columns, Cramér's V for two categorical
    columns and the correlation ratio eta for a mixed pair. Returns ``metric="assoc_diff"``
    rows with ``column="a|b"``.
    """
    check_same_columns(real, synth)
    cats = set(categorical_columns(real))
    cols = list(real.columns)
    rows = []
    for i, a in enumerate(cols):
        for b in cols[i + 1 :]:
            diff = abs(_association(real, a, b, cats) - _association(synth, a, b, cats))
            rows.append(("assoc_diff", f"{a}|{b}", diff))
    return pd.DataFrame(rows, columns=["metric", "column", "value"])


def _make_classifier(classifier: str, seed: int):
    if classifier == "hgb":
        return HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    if classifier == "lr":
        return LogisticRegression(max_iter=1000)
    raise ConfigError(f"classifier must be 'hgb' or 'lr', got {classifier!r}")


def c2st_auc(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    *,
    classifier: Literal["hgb", "lr"] = "hgb",
    cv: int = 5,
    random_state=None,
) -> C2STResult:
    """Classifier two-sample test: cross-validated AUC of a classifier separating real from synthetic.

    The larger set is subsampled to the size of the smaller one (balanced classes); rows are
    encoded in a :class:`FeatureSpace` fitted on ``real``. 0.5 means the classifier cannot tell
    the two apart; 1.0 means they are perfectly separable. Exact copies of the *same* rows cannot
    be separated (AUC about 0.5 or below); compare synthetic rows with held-back real rows to
    detect memorisation.

    Parameters
    ----------
    real, synth : DataFrame
        Same columns (extra columns of ``synth`` are ignored).
    classifier : {"hgb", "lr"}
        Histogram gradient boosting or logistic regression.
    cv : int
        Number of stratified folds (>= 2).
    random_state : None, int or numpy Generator

    Returns
    -------
    C2STResult
        ``auc`` (mean over folds), ``auc_sd`` (SD over folds), ``n_per_class``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = pd.DataFrame({"x": rng.normal(size=300)})
    >>> b = pd.DataFrame({"x": rng.normal(3, 1, size=300)})
    >>> c2st_auc(a, b, classifier="lr", random_state=0).auc > 0.9
    True
    """
    check_same_columns(real, synth)
    if not isinstance(cv, int) or cv < 2:
        raise ConfigError(f"cv must be an integer >= 2, got {cv!r}")
    _make_classifier(classifier, 0)  # validate early
    rng = as_numpy_rng(random_state)
    n = min(len(real), len(synth))
    if n < cv:
        raise DataError(f"C2ST needs at least cv={cv} rows in each table, got {n}")
    space = FeatureSpace().fit(real)
    xr = space.transform(real.iloc[rng.permutation(len(real))[:n]])
    xs = space.transform(synth[real.columns].iloc[rng.permutation(len(synth))[:n]])
    x = np.vstack([xr, xs])
    y = np.r_[np.zeros(n), np.ones(n)]
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed_from_rng(rng) % 2**32)
    aucs = []
    for train, test in folds.split(x, y):
        model = _make_classifier(classifier, seed_from_rng(rng) % 2**32)
        model.fit(x[train], y[train])
        aucs.append(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1]))
    return C2STResult(float(np.mean(aucs)), float(np.std(aucs, ddof=1)), n)


def knn_precision_recall(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    *,
    k: int = 5,
    max_rows: int = 5000,
    random_state=None,
) -> tuple[float, float]:
    """k-NN precision and recall (Kynkäänniemi et al. 2019) in the real feature space.

    Precision: share of synthetic rows inside the real manifold (within the k-th nearest real
    neighbour radius of some real row). Recall: share of real rows inside the synthetic manifold.
    A mode-collapsed generator has high precision and low recall.
    """
    check_same_columns(real, synth)
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    rng = as_numpy_rng(random_state)
    space = FeatureSpace().fit(real)
    xr = space.transform(real.iloc[rng.permutation(len(real))[:max_rows]])
    xs = space.transform(synth[real.columns].iloc[rng.permutation(len(synth))[:max_rows]])
    if min(len(xr), len(xs)) <= k:
        raise DataError(f"k-NN precision/recall needs more than k={k} rows in each table")
    return _manifold_share(xr, xs, k), _manifold_share(xs, xr, k)


def _manifold_share(ref: np.ndarray, query: np.ndarray, k: int) -> float:
    """Share of ``query`` rows within the k-NN ball of at least one ``ref`` row."""
    radii = NearestNeighbors(n_neighbors=k + 1).fit(ref).kneighbors(ref)[0][:, -1]
    dist, idx = NearestNeighbors(n_neighbors=min(len(ref), 50)).fit(ref).kneighbors(query)
    inside = (dist <= radii[idx] + 1e-12).any(axis=1)
    return float(inside.mean())


def tstr_auc(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    *,
    target: str,
    real_test: pd.DataFrame | None = None,
    random_state=None,
) -> tuple[float, float]:
    """Utility: AUC on real test rows of a model trained on synthetic (TSTR) vs on real (TRTR).

    Without ``real_test`` the real table is split in halves: TRTR trains on one half, and both
    models are scored on the other. The positive class is the rarer real class of ``target``.
    """
    for name, df in (("real", real), ("synthetic", synth)):
        if target not in df.columns:
            raise DataError(f"target column {target!r} is not in the {name} table")
    rng = as_numpy_rng(random_state)
    if real_test is None:
        perm = rng.permutation(len(real))
        train, real_test = real.iloc[perm[: len(real) // 2]], real.iloc[perm[len(real) // 2 :]]
    else:
        train = real
    positive = _as_labels(real[target]).value_counts().index[-1]
    features = [c for c in real.columns if c != target]
    space = FeatureSpace().fit(train[features])
    y_test = (_as_labels(real_test[target]) == positive).to_numpy()
    if y_test.all() or not y_test.any():
        raise DataError(f"the real test rows hold a single class of {target!r}; cannot score AUC")
    scores = []
    for df in (synth, train):
        y = (_as_labels(df[target]) == positive).to_numpy()
        if y.all() or not y.any():
            scores.append(float("nan"))
            continue
        model = _make_classifier("hgb", seed_from_rng(rng) % 2**32)
        model.fit(space.transform(df[features]), y)
        prob = model.predict_proba(space.transform(real_test[features]))[:, 1]
        scores.append(float(roc_auc_score(y_test, prob)))
    return scores[0], scores[1]


def stratum_labels(df: pd.DataFrame, strata: Sequence[str]) -> pd.Series:
    """One label per row such as ``"SEX=F & SOURCE=in"``."""
    missing = [c for c in strata if c not in df.columns]
    if missing:
        raise DataError(f"strata column(s) {missing} are not in the table")
    parts = [f"{c}=" + _as_labels(df[c]) for c in strata]
    out = parts[0]
    for p in parts[1:]:
        out = out + " & " + p
    return out


def _block(real, synth, stratum, *, classifier, cv, k, rng, associations) -> list[tuple]:
    rows = [(m, stratum, c, v) for m, c, v in column_distances(real, synth).itertuples(index=False)]
    dist = [r[3] for r in rows if r[0] in ("ks", "tv")]
    rows.append(("mean_column_distance", stratum, "", float(np.mean(dist))))
    if associations and real.shape[1] > 1:
        assoc = association_differences(real, synth)
        rows += [("assoc_diff", stratum, c, v) for _, c, v in assoc.itertuples(index=False)]
        rows.append(("mean_assoc_diff", stratum, "", float(assoc["value"].mean())))
    res = c2st_auc(real, synth, classifier=classifier, cv=cv, random_state=rng)
    rows += [("c2st_auc", stratum, "", res.auc), ("c2st_auc_sd", stratum, "", res.auc_sd)]
    prec, rec = knn_precision_recall(real, synth, k=k, random_state=rng)
    rows += [("knn_precision", stratum, "", prec), ("knn_recall", stratum, "", rec)]
    return rows


def fidelity_report(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    *,
    strata: Sequence[str] | None = None,
    target: str | None = None,
    classifier: Literal["hgb", "lr"] = "hgb",
    cv: int = 5,
    k: int = 5,
    min_rows: int = 20,
    associations: bool = True,
    random_state=None,
) -> pd.DataFrame:
    """All fidelity metrics, overall (``stratum="all"``) and per stratum of ``strata``.

    Metrics: ``ks`` / ``tv`` per column, ``missing_diff``, ``mean_column_distance``,
    ``assoc_diff`` per pair and ``mean_assoc_diff``, ``c2st_auc`` (+ ``c2st_auc_sd``),
    ``knn_precision`` / ``knn_recall``, ``n_real`` / ``n_synth``, and, when ``target`` is given,
    ``tstr_auc`` / ``trtr_auc`` (overall only). A stratum with fewer than ``min_rows`` real or
    synthetic rows only gets its row counts (and a log message).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> real = pd.DataFrame({"x": rng.normal(size=200), "g": rng.choice(["a", "b"], 200)})
    >>> rep = fidelity_report(real, real.sample(frac=1, random_state=1), strata=["g"],
    ...                       classifier="lr", random_state=0)
    >>> sorted(rep["stratum"].unique())
    ['all', 'g=a', 'g=b']
    """
    check_same_columns(real, synth)
    synth = synth[list(real.columns)]
    rng = as_numpy_rng(random_state)
    rows = [("n_real", "all", "", float(len(real))), ("n_synth", "all", "", float(len(synth)))]
    rows += _block(
        real, synth, "all", classifier=classifier, cv=cv, k=k, rng=rng, associations=associations
    )
    if target is not None:
        tstr, trtr = tstr_auc(real, synth, target=target, random_state=rng)
        rows += [("tstr_auc", "all", "", tstr), ("trtr_auc", "all", "", trtr)]
    if strata:
        lab_r, lab_s = stratum_labels(real, strata), stratum_labels(synth, strata)
        for label in sorted(set(lab_r)):
            r, s = real[(lab_r == label).to_numpy()], synth[(lab_s == label).to_numpy()]
            rows += [("n_real", label, "", float(len(r))), ("n_synth", label, "", float(len(s)))]
            if min(len(r), len(s)) < max(min_rows, cv, k + 1):
                logger.info(
                    "stratum %s: %d real / %d synthetic rows, skipped", label, len(r), len(s)
                )
                continue
            rows += _block(
                r, s, label, classifier=classifier, cv=cv, k=k, rng=rng, associations=associations
            )
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)
