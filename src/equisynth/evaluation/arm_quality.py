"""The quality section of experiment reports: fidelity and privacy of each arm's synthetic rows.

For every arm whose training set holds synthetic rows (the generator arms ``mcrage`` and
``smote_mcrage``, and the ``smote`` / ``random_oversample`` baselines for comparison), the
synthetic rows are compared with real rows that no arm trained on (fidelity, overall and per
stratum) and their distances to the real training rows are set against those of the same
held-out rows (privacy), with :mod:`equisynth.evaluation.quality`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from equisynth._utils import as_numpy_rng
from equisynth.evaluation.quality import fidelity_report, privacy_report

logger = logging.getLogger(__name__)

__all__ = ["QUALITY_COLUMNS", "QualityOptions", "arm_quality"]

QUALITY_COLUMNS = ["arm", "section", "metric", "stratum", "column", "value"]


@dataclass(frozen=True)
class QualityOptions:
    """How thoroughly the quality section is computed.

    Parameters
    ----------
    classifier : {"hgb", "lr"}, default="hgb"
        C2ST classifier: gradient boosting sees non-linear differences; logistic
        regression is about ten times faster and sees only shifts along a direction.
    cv : int, default=5
        C2ST folds.
    associations : bool, default=True
        Pairwise association differences (quadratic in the number of columns).
    """

    classifier: Literal["hgb", "lr"] = "hgb"
    cv: int = 5
    associations: bool = True


def arm_quality(
    training_sets: Mapping[str, pd.DataFrame],
    holdout: pd.DataFrame,
    *,
    columns: Sequence[str],
    strata: Sequence[str],
    options: QualityOptions | None = None,
    random_state=0,
) -> pd.DataFrame:
    """Fidelity and privacy of the synthetic rows of every arm that has some.

    Parameters
    ----------
    training_sets : mapping arm -> DataFrame
        Each arm's training table with a boolean ``is_synthetic`` column.
    holdout : DataFrame
        Real rows that no arm trained on (the reference).
    columns : sequence of str
        Columns compared (model features, target and sensitive attributes).
    strata : sequence of str
        Columns defining the strata of the per-stratum fidelity rows.
    options : QualityOptions, optional
        C2ST classifier, folds and whether to compute association differences.
    random_state : int

    Returns
    -------
    DataFrame
        Tidy ``arm, section, metric, stratum, column, value`` (``section`` is ``fidelity``
        or ``privacy``); empty when no arm has synthetic rows.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> real = pd.DataFrame({"x": rng.normal(size=300), "g": rng.choice(["a", "b"], 300)})
    >>> train = pd.concat([real[:100].assign(is_synthetic=False),
    ...                    real[100:200].assign(is_synthetic=True)], ignore_index=True)
    >>> q = arm_quality({"copy": train}, real[200:], columns=["x", "g"], strata=["g"],
    ...                 options=QualityOptions(classifier="lr"))
    >>> sorted(q["section"].unique())
    ['fidelity', 'privacy']
    """
    options = options or QualityOptions()
    rng = as_numpy_rng(random_state)
    columns = list(columns)
    frames = []
    for arm, train in training_sets.items():
        mask = train["is_synthetic"].to_numpy(dtype=bool)
        if not mask.any():
            continue
        synth = train.loc[mask, columns].reset_index(drop=True)
        real_train = train.loc[~mask, columns].reset_index(drop=True)
        ref = holdout[columns].reset_index(drop=True)
        fid = fidelity_report(
            ref,
            synth,
            strata=list(strata),
            classifier=options.classifier,
            cv=options.cv,
            associations=options.associations,
            random_state=rng,
        )
        priv = privacy_report(real_train, synth, ref, strata=list(strata), random_state=rng)
        for section, frame in (("fidelity", fid), ("privacy", priv)):
            frames.append(frame.assign(arm=arm, section=section))
        logger.info("quality of arm %s: %d synthetic rows scored", arm, len(synth))
    if not frames:
        return pd.DataFrame(columns=QUALITY_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    out["column"] = out["column"].fillna("")
    return out[QUALITY_COLUMNS]
