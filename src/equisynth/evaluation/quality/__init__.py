"""Quality and privacy metrics of synthetic data (issue 5): fidelity, privacy, longitudinal, report."""

from equisynth.evaluation.quality.fidelity import (
    C2STResult,
    association_differences,
    c2st_auc,
    column_distances,
    fidelity_report,
    knn_precision_recall,
    tstr_auc,
)
from equisynth.evaluation.quality.longitudinal import longitudinal_report
from equisynth.evaluation.quality.privacy import drop_close_copies, privacy_report
from equisynth.evaluation.quality.report import quality_markdown, write_quality_outputs

__all__ = [
    "C2STResult",
    "association_differences",
    "c2st_auc",
    "column_distances",
    "drop_close_copies",
    "fidelity_report",
    "knn_precision_recall",
    "longitudinal_report",
    "privacy_report",
    "quality_markdown",
    "tstr_auc",
    "write_quality_outputs",
]
