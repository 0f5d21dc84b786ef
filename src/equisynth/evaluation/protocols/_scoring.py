"""Scoring of one arm on the test set as tidy rows ``seed, arm, metric, group, value``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from equisynth.fairness.metrics import DEFAULT_MIN_GROUP_SIZE, score_predictions

RESULT_COLUMNS = ["seed", "arm", "metric", "group", "value"]


def score_arm(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_score: np.ndarray,
    sensitive: pd.DataFrame,
    *,
    seed: int,
    arm: str,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
) -> pd.DataFrame:
    """Overall, per-group and fairness metrics of one arm (see ``fairness.metrics``).

    ``y_true`` and ``y_pred`` are booleans (True = the positive class).
    """
    rows = score_predictions(
        np.asarray(y_true, dtype=bool),
        np.asarray(y_pred, dtype=bool),
        np.asarray(y_score, dtype=float),
        sensitive_features=sensitive.reset_index(drop=True),
        pos_label=True,
        min_group_size=min_group_size,
    )
    rows.insert(0, "arm", arm)
    rows.insert(0, "seed", int(seed))
    return rows[RESULT_COLUMNS]
