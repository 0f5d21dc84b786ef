"""Privacy of synthetic rows: are they copies of (or too close to) real training patients?

All distances are Euclidean in a :class:`~equisynth.evaluation.quality._features.FeatureSpace`
fitted on the real training table. The reference for "how close is normal" is a real held-out
table that the generator never saw: a synthetic row is no closer to the training data than a
fresh real patient is, if the generator generalises.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from equisynth._utils import as_numpy_rng
from equisynth.evaluation.quality._features import FeatureSpace, check_same_columns
from equisynth.evaluation.quality.fidelity import stratum_labels
from equisynth.exceptions import ConfigError, DataError

__all__ = ["drop_close_copies", "privacy_metrics_arrays", "privacy_report"]

COPY_TOL = 1e-8


def _nn_distances(ref: np.ndarray, query: np.ndarray, k: int = 2) -> np.ndarray:
    k = min(k, len(ref))
    idx = NearestNeighbors(n_neighbors=k).fit(ref).kneighbors(query, return_distance=False)
    # Recompute the distances exactly: the search's ||a||^2 + ||b||^2 - 2ab shortcut is off by
    # up to ~1e-6 with many one-hot features, so exact copies would not measure <= COPY_TOL.
    out = np.empty(idx.shape)
    for start in range(0, len(query), 1024):
        block = slice(start, start + 1024)
        diff = ref[idx[block]] - query[block, None, :]
        out[block] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    return np.sort(out, axis=1)


def _matched_members(train_strata, holdout_strata, n_train, n_holdout, rng):
    """Equal numbers of members and non-members, matched stratum by stratum.

    Without strata, ``min(n_train, n_holdout)`` of each at random. With strata, each stratum
    contributes ``min`` of its member and non-member counts of each, so that the attack cannot
    score a difference of composition (e.g. a held-out set richer in the synthetic group) as a
    membership signal.
    """
    if train_strata is None or holdout_strata is None:
        n = min(n_train, n_holdout)
        return rng.permutation(n_train)[:n], rng.permutation(n_holdout)[:n]
    train_strata, holdout_strata = np.asarray(train_strata), np.asarray(holdout_strata)
    if len(train_strata) != n_train or len(holdout_strata) != n_holdout:
        raise DataError(
            f"strata labels must have one value per row: got {len(train_strata)} for {n_train} "
            f"training rows and {len(holdout_strata)} for {n_holdout} held-out rows"
        )
    members, non_members = [], []
    for label in np.unique(np.concatenate([train_strata, holdout_strata])):
        a = np.flatnonzero(train_strata == label)
        b = np.flatnonzero(holdout_strata == label)
        k = min(len(a), len(b))
        members.append(rng.permutation(a)[:k])
        non_members.append(rng.permutation(b)[:k])
    return np.concatenate(members), np.concatenate(non_members)


def privacy_metrics_arrays(
    train: np.ndarray,
    synth: np.ndarray,
    holdout: np.ndarray,
    *,
    train_strata=None,
    holdout_strata=None,
    random_state=None,
) -> dict[str, float]:
    """Privacy metrics on already-encoded arrays (rows = records, same feature space).

    Returns ``dcr_synth_median``, ``dcr_holdout_median``, ``dcr_ratio`` (synthetic over held-out
    median distance to the closest training record; about 1 is good, near 0 means copies),
    ``dcr_synth_p05`` / ``dcr_holdout_p05``, ``share_synth_closer_than_holdout_p05``,
    ``nndr_synth_median`` / ``nndr_holdout_median`` (nearest / second-nearest distance ratio),
    ``exact_copy_rate`` / ``exact_copy_rate_holdout`` and ``mia_auc`` (a distance-based
    membership-inference attack: training members vs held-out non-members, scored by the
    negative distance to the closest synthetic row; 0.5 = no leak). With ``train_strata`` and
    ``holdout_strata`` (one label per row), members and non-members are matched stratum by
    stratum (``mia_pairs`` says how many of each were used), so that a held-out set whose group
    mix differs from the training set's does not pass for a leak.
    """
    if len(train) < 2 or len(synth) < 1 or len(holdout) < 2:
        raise DataError(
            "privacy metrics need >= 2 training rows, >= 1 synthetic row and >= 2 held-out rows, "
            f"got {len(train)}, {len(synth)} and {len(holdout)}"
        )
    rng = as_numpy_rng(random_state)
    d_s = _nn_distances(train, synth)
    d_h = _nn_distances(train, holdout)
    dcr_s, dcr_h = d_s[:, 0], d_h[:, 0]
    med_h = float(np.median(dcr_h))
    p05_h = float(np.percentile(dcr_h, 5))
    out = {
        "dcr_synth_median": float(np.median(dcr_s)),
        "dcr_holdout_median": med_h,
        "dcr_ratio": float(np.median(dcr_s) / med_h) if med_h > 0 else float("nan"),
        "dcr_synth_p05": float(np.percentile(dcr_s, 5)),
        "dcr_holdout_p05": p05_h,
        "share_synth_closer_than_holdout_p05": float((dcr_s < p05_h).mean()),
        "exact_copy_rate": float((dcr_s <= COPY_TOL).mean()),
        "exact_copy_rate_holdout": float((dcr_h <= COPY_TOL).mean()),
    }
    if d_s.shape[1] > 1:
        out["nndr_synth_median"] = float(np.median(_ratio(d_s)))
        out["nndr_holdout_median"] = float(np.median(_ratio(d_h)))
    m_idx, h_idx = _matched_members(train_strata, holdout_strata, len(train), len(holdout), rng)
    n = len(m_idx)
    out["mia_pairs"] = float(n)
    if n == 0:
        out["mia_auc"] = float("nan")
        return out
    score = -_nn_distances(synth, np.vstack([train[m_idx], holdout[h_idx]]), k=1)[:, 0]
    out["mia_auc"] = float(roc_auc_score(np.r_[np.ones(n), np.zeros(n)], score))
    return out


def _ratio(d: np.ndarray) -> np.ndarray:
    return np.where(d[:, 1] > 0, d[:, 0] / np.maximum(d[:, 1], 1e-300), 1.0)


def privacy_report(
    real_train: pd.DataFrame,
    synth: pd.DataFrame,
    real_holdout: pd.DataFrame,
    *,
    strata: Sequence[str] | None = None,
    max_rows: int = 20000,
    random_state=None,
) -> pd.DataFrame:
    """Privacy metrics as a tidy table (``metric, stratum, column, value``; ``stratum="all"``).

    Parameters
    ----------
    real_train : DataFrame
        The real rows the generator was trained on.
    synth : DataFrame
        Synthetic rows (same columns).
    real_holdout : DataFrame
        Real rows the generator never saw (the reference for normal closeness).
    strata : sequence of str, optional
        Columns whose combinations the membership-inference attack matches between members
        and non-members (pass the strata when the held-out rows' group mix differs from the
        training rows', as in a rebalancing experiment).
    max_rows : int
        Each table is subsampled to at most this many rows (nearest-neighbour cost).
    random_state : None, int or numpy Generator

    See :func:`privacy_metrics_arrays` for the metrics.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> real = pd.DataFrame({"x": rng.normal(size=400), "y": rng.normal(size=400)})
    >>> rep = privacy_report(real[:200], real[:200], real[200:], random_state=0)
    >>> float(rep.set_index("metric").loc["exact_copy_rate", "value"])
    1.0
    """
    check_same_columns(real_train, synth)
    check_same_columns(real_train, real_holdout, "held-out")
    rng = as_numpy_rng(random_state)
    space = FeatureSpace().fit(real_train)

    def pick(df):
        return df.iloc[rng.permutation(len(df))[:max_rows]]

    train_s, synth_s, hold_s = pick(real_train), pick(synth), pick(real_holdout)
    labels = {}
    if strata:
        labels = {
            "train_strata": stratum_labels(train_s, strata).to_numpy(),
            "holdout_strata": stratum_labels(hold_s, strata).to_numpy(),
        }
    metrics = privacy_metrics_arrays(
        space.transform(train_s),
        space.transform(synth_s),
        space.transform(hold_s),
        random_state=rng,
        **labels,
    )
    return pd.DataFrame(
        [(m, "all", "", v) for m, v in metrics.items()],
        columns=["metric", "stratum", "column", "value"],
    )


def drop_close_copies(
    synth: pd.DataFrame, real: pd.DataFrame, *, threshold: float = 0.0
) -> tuple[pd.DataFrame, np.ndarray]:
    """Drop synthetic rows whose distance to the closest real row is at most ``threshold``.

    Distances are measured in the feature space fitted on ``real`` (robust-scaled numeric,
    one-hot categorical). ``threshold=0`` drops exact copies only; a privacy-minded choice is the
    ``dcr_holdout_p05`` of :func:`privacy_report` (closer than 95% of fresh real patients).

    Returns
    -------
    kept : DataFrame
        The synthetic rows kept, original index and order.
    dropped_mask : ndarray of bool
        True for each input row that was dropped.

    Examples
    --------
    >>> real = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    >>> kept, dropped = drop_close_copies(pd.DataFrame({"x": [1.0, 5.0]}), real)
    >>> dropped.tolist()
    [True, False]
    """
    check_same_columns(real, synth)
    if not np.isfinite(threshold) or threshold < 0:
        raise ConfigError(f"threshold must be a finite distance >= 0, got {threshold!r}")
    space = FeatureSpace().fit(real)
    dist = _nn_distances(space.transform(real), space.transform(synth), k=1)[:, 0]
    dropped = dist <= threshold + COPY_TOL
    return synth[~dropped], dropped
