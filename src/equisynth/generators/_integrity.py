"""Consistency checks of a generator rebuilt from a model directory.

The checksums in ``config.json`` prove that the files are the ones that were saved; these
checks prove that what was saved describes one coherent model (columns, schema, encoder,
strata and weights agree), so that a config written by another version, by a bug or by
hand is refused with :class:`~equisynth.exceptions.ModelFileError` at load time instead of
failing obscurely while sampling.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from equisynth.data.schema import KINDS, MAX_DECIMALS
from equisynth.exceptions import ModelFileError

__all__ = ["check_loaded_tabular"]


def _fail(path, what: str) -> None:
    raise ModelFileError(f"model directory {path} is inconsistent: {what}; re-fit the model")


def _finite_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _valid_dtype(dtype) -> bool:
    if not isinstance(dtype, str):
        return False
    try:
        pd.api.types.pandas_dtype(dtype)
    except (TypeError, ValueError, KeyError):
        return False
    return True


def _check_spec(spec, path) -> None:
    name = spec.name
    if spec.kind not in KINDS or not isinstance(spec.has_missing, bool):
        _fail(path, f"column {name!r} has an unknown kind or missing flag")
    if not _valid_dtype(spec.dtype):
        _fail(path, f"column {name!r} has an unknown dtype {spec.dtype!r}")
    if spec.kind in ("continuous", "integer"):
        if not (isinstance(spec.decimals, int) and 0 <= spec.decimals <= MAX_DECIMALS):
            _fail(path, f"column {name!r} has invalid decimals {spec.decimals!r}")
        if not (_finite_number(spec.minimum) and _finite_number(spec.maximum)):
            _fail(path, f"column {name!r} has no finite range")
        if spec.minimum > spec.maximum:
            _fail(path, f"column {name!r} has minimum > maximum")
    else:
        cats = spec.categories
        if not cats or len(cats) > (2 if spec.kind == "binary" else len(cats)):
            _fail(path, f"column {name!r} has no (or too many) categories")
        if any(not isinstance(c, str | int | float | bool) for c in cats):
            _fail(path, f"column {name!r} has a category that is not a JSON scalar")
        if len(set(cats)) != len(cats):
            _fail(path, f"column {name!r} has duplicated categories")


def check_loaded_tabular(gen, path) -> None:
    """Raise :class:`ModelFileError` unless the state of a loaded tabular generator is coherent."""
    gen._check_params()
    columns = gen.columns_
    if len(set(map(str, columns))) != len(columns) or not columns:
        _fail(path, "the column list is empty or has duplicates")
    if gen.schema_.names != [str(c) for c in columns]:
        _fail(path, "the schema does not describe the model's columns")
    if not gen.condition_on_ or any(c not in columns for c in gen.condition_on_):
        _fail(path, "the condition columns are not columns of the model")
    if list(gen.strata_.columns_) != list(gen.condition_on_):
        _fail(path, "the strata are not built on the condition columns")
    if any(len(levels) == 0 for levels in gen.strata_.levels_) or len(gen.strata_.dtypes_) != len(
        gen.condition_on_
    ):
        _fail(path, "a condition column has no levels or no dtype")
    for column, levels, dtype in zip(
        gen.condition_on_, gen.strata_.levels_, gen.strata_.dtypes_, strict=True
    ):
        if not _valid_dtype(dtype):
            _fail(path, f"condition column {column!r} has an unknown dtype {dtype!r}")
        if any(not isinstance(v, str | int | float | bool) for v in levels):
            _fail(path, f"condition column {column!r} has a level that is not a JSON scalar")
        if len(set(levels)) != len(levels):
            _fail(path, f"condition column {column!r} has duplicated levels")
    if gen.data_columns_ != [c for c in columns if c not in gen.condition_on_]:
        _fail(path, "the data columns do not match the columns and conditions")
    for spec in gen.schema_.columns:
        _check_spec(spec, path)
    enc = gen.encoder_
    if list(enc.schema_.columns) != [gen.schema_[str(c)] for c in gen.data_columns_]:
        _fail(path, "the encoder's schema does not match the data columns")
    if len(enc.num_columns_) != gen.d_num_ or list(enc.cardinalities_) != gen.cardinalities_:
        _fail(path, "the encoder's slots do not match d_num / cardinalities")
    if any(k < 1 for k in gen.cardinalities_):
        _fail(path, "a categorical column has no level")
    for name in enc.num_columns_:
        keys = [f"{name}.quantiles"]
        keys += [f"{name}.references"] if enc.numeric_transform == "quantile" else []
        keys += [f"{name}.moments"] if enc.numeric_transform == "standard" else []
        for key in keys:
            values = enc.arrays_.get(key)
            if values is None or values.ndim != 1 or len(values) < 1:
                _fail(path, f"the encoder lacks the array {key!r}")
            if not np.isfinite(values).all():
                _fail(path, f"the encoder array {key!r} has non-finite values")
    counts = gen.stratum_counts_
    if len(counts) != gen.strata_.n_strata_ or any(not isinstance(c, int) or c < 0 for c in counts):
        _fail(path, "the stratum counts do not match the strata")
    if sum(counts) <= 0:
        _fail(path, "no stratum has training rows")
    if gen.timesteps_ < 2:
        _fail(path, f"timesteps {gen.timesteps_} < 2")
    if gen.clip_x0_ is not None and not (
        isinstance(gen.clip_x0_, int | float) and math.isfinite(gen.clip_x0_) and gen.clip_x0_ > 0
    ):
        _fail(path, f"clip_x0 {gen.clip_x0_!r} is not a positive number")
    if gen.sample_seed_ < 0:
        _fail(path, "the sampling seed is negative")
