"""data layer of equisynth (see docs/architecture.md): schema, encoding, strata, and the
longitudinal cohort model, its loaders and prediction tasks (no torch here)."""

from equisynth.data.cohort import Cohort, Patient, VisitCodes
from equisynth.data.encoding import EncodedTable, TabularEncoder
from equisynth.data.loaders import load_events, load_mimic3, load_source, load_synthea
from equisynth.data.schema import ColumnSpec, TableSchema, infer_schema
from equisynth.data.strata import StrataIndex, resolve_sampling_strategy
from equisynth.data.tasks import SequenceTask, make_task, task_summary

__all__ = [
    "Cohort",
    "ColumnSpec",
    "EncodedTable",
    "Patient",
    "SequenceTask",
    "StrataIndex",
    "TableSchema",
    "TabularEncoder",
    "VisitCodes",
    "infer_schema",
    "load_events",
    "load_mimic3",
    "load_source",
    "load_synthea",
    "make_task",
    "resolve_sampling_strategy",
    "task_summary",
]
