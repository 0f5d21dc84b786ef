"""Group-fairness metrics (on top of fairlearn) and differentiable fairness losses (torch).

The losses live in :mod:`equisynth.fairness.losses` and import torch when first used.
"""

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

_LOSSES = (
    "FAIRNESS_LOSSES",
    "FairnessLoss",
    "disparate_impact_loss",
    "make_fairness_loss",
    "worst_group_tpr_loss",
)


def __getattr__(name):  # the losses need torch; the metrics do not
    if name in _LOSSES:
        from equisynth.fairness import losses

        return getattr(losses, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    *_LOSSES,
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
