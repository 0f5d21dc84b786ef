"""Scoring of one arm on the test set as tidy rows ``seed, arm, metric, group, value``."""

from __future__ import annotations

import numpy as np
import pandas as pd

RESULT_COLUMNS = ["seed", "arm", "metric", "group", "value"]


def score_arm(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_score: np.ndarray,
    sensitive: pd.DataFrame,
    *,
    seed: int,
    arm: str,
) -> pd.DataFrame:
    """Overall, per-group and fairness metrics of one arm (delegates to ``fairness.metrics``)."""
    from equisynth.fairness.metrics import evaluation_rows

    rows = evaluation_rows(
        seed,
        arm,
        np.asarray(y_true).astype(int),
        np.asarray(y_pred).astype(int),
        np.asarray(y_score, dtype=float),
        sensitive.reset_index(drop=True),
        pos_label=1,
    )
    frame = pd.DataFrame(rows)
    return frame[RESULT_COLUMNS]
