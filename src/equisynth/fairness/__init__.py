"""Group-fairness metrics (on top of fairlearn) and, later, differentiable fairness losses."""

from equisynth.fairness.metrics import (
    classification_metrics,
    demographic_parity_difference,
    disparate_impact,
    equalized_odds_difference,
    fairness_metrics,
    group_labels,
    group_metrics,
    score_predictions,
    worst_group_tpr,
)

__all__ = [
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
