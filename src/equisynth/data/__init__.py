"""data layer of equisynth (see docs/architecture.md): schema, encoding, strata."""

from equisynth.data.encoding import EncodedTable, TabularEncoder
from equisynth.data.schema import ColumnSpec, TableSchema, infer_schema
from equisynth.data.strata import StrataIndex, resolve_sampling_strategy

__all__ = [
    "ColumnSpec",
    "EncodedTable",
    "StrataIndex",
    "TableSchema",
    "TabularEncoder",
    "infer_schema",
    "resolve_sampling_strategy",
]
