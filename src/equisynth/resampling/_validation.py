"""Input checks shared by every sampler (and by the CLI and evaluation layers)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from equisynth.data.schema import MAX_ABS_VALUE
from equisynth.exceptions import DataError, StrataError

__all__ = ["MAX_NUMERIC_LEVELS", "validate_resampling_input"]

#: A numeric sensitive column with more distinct values than this must be binned first.
MAX_NUMERIC_LEVELS = 20


class InputTypeError(DataError, TypeError):
    """X or y is of a type the samplers do not take."""


def validate_resampling_input(
    X, y, sensitive_features: Sequence[str] | str, target_name: str | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """Check ``(X, y, sensitive_features)`` and return ``(X, y)`` as a DataFrame and a Series.

    Parameters
    ----------
    X : DataFrame
        Features, including the sensitive columns.
    y : Series or array-like of length ``len(X)``
        Target; its index is replaced by ``X``'s.
    sensitive_features : str or sequence of str
        Columns of ``X`` that define the groups.
    target_name : str, optional
        Name of the target (defaults to ``y.name`` or ``"target"``).

    Returns
    -------
    X_df : DataFrame
    y_series : Series named after the target, indexed like ``X``.

    Raises
    ------
    DataError
        Missing sensitive column, NaN in the target or a sensitive column, a one-class
        target, a numeric sensitive column with too many levels.
    StrataError
        Only one stratum (target x sensitive) is observed.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"SEX": ["F", "M", "F", "M"], "AGE": [30, 40, 50, 60]})
    >>> X_df, y_s = validate_resampling_input(X, pd.Series([0, 1, 1, 0], name="y"), ["SEX"])
    >>> y_s.name
    'y'
    """
    if not isinstance(X, pd.DataFrame):
        raise InputTypeError(
            f"X must be a pandas DataFrame with named columns (the sensitive features are looked up "
            f"by name), got {type(X).__name__}; wrap it with pandas.DataFrame(X, columns=[...])"
        )
    duplicated = X.columns[X.columns.duplicated()].unique().tolist()
    if duplicated:
        raise DataError(
            f"X has duplicated column names {duplicated}; give every column a unique name"
        )
    sensitive = (
        [sensitive_features] if isinstance(sensitive_features, str) else list(sensitive_features)
    )
    if not sensitive:
        raise DataError("sensitive_features is empty; give at least one column of X")
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise InputTypeError(f"y must be one column, got a DataFrame with {y.shape[1]} columns")
        y = y.iloc[:, 0]
    if isinstance(y, pd.Series):
        if len(y) != len(X):
            raise DataError(
                f"y has {len(y)} values but X has {len(X)} rows; they must have the same length"
            )
        name = target_name or (y.name if y.name is not None else "target")
        y_s = pd.Series(y.to_numpy(), index=X.index, name=name, dtype=y.dtype)
    else:
        arr = np.asarray(y)
        if arr.ndim != 1:
            raise InputTypeError(f"y must be one-dimensional, got shape {arr.shape}")
        if len(arr) != len(X):
            raise DataError(
                f"y has {len(arr)} values but X has {len(X)} rows; they must have the same length"
            )
        y_s = pd.Series(arr, index=X.index, name=target_name or "target")
    if len(X) == 0:
        raise DataError("X is empty; nothing to resample")
    target = str(y_s.name)
    if target in X.columns:
        raise DataError(
            f"the target name '{target}' is also a column of X; rename y or drop that column from X"
        )
    for col in sensitive:
        if col not in X.columns:
            raise DataError(
                f"column '{col}' given in sensitive_features is not in X; available columns: {list(X.columns)}"
            )
    n_missing = int(y_s.isna().sum())
    if n_missing:
        raise DataError(
            f"target '{target}' has {n_missing} missing value(s); drop or impute those rows first"
        )
    for col in sensitive:
        n_missing = int(X[col].isna().sum())
        if n_missing:
            raise DataError(
                f"sensitive column '{col}' has {n_missing} missing value(s); drop those rows or encode "
                "missing as its own level (e.g. X[col].fillna('unknown'))"
            )
    for col in sensitive:
        s = X[col]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            n_levels = s.nunique()
            if n_levels > MAX_NUMERIC_LEVELS:
                raise DataError(
                    f"sensitive column '{col}' is numeric with {n_levels} distinct values (more than "
                    f"{MAX_NUMERIC_LEVELS}); bin it first, e.g. X['{col}'] = pandas.cut(X['{col}'], bins=5)"
                )
    for col in X.columns:
        if pd.api.types.is_float_dtype(X[col]):
            values = X[col].to_numpy(dtype=float, na_value=np.nan)
            bad = np.isinf(values) | (np.abs(np.nan_to_num(values)) > MAX_ABS_VALUE)
            if bad.any():
                raise DataError(
                    f"column '{col}' has {int(bad.sum())} infinite or huge value(s) such as "
                    f"{float(values[bad][0])!r} (at most {MAX_ABS_VALUE:g} in absolute value); "
                    "replace them with finite values or blank them (missing)"
                )
    n_strata = len(pd.concat([y_s, X[sensitive]], axis=1).drop_duplicates())
    if n_strata < 2:
        raise StrataError(
            f"only one stratum of ({target}, {', '.join(map(str, sensitive))}) is observed "
            f"(every row has {target}={y_s.iloc[0]!r}, "
            + ", ".join(f"{c}={X[c].iloc[0]!r}" for c in sensitive)
            + "); nothing to rebalance: the target needs two classes"
        )
    classes = pd.unique(y_s)
    if len(classes) < 2:
        raise DataError(
            f"target '{target}' has a single class {classes[0]!r}; resampling needs at least two classes"
        )
    return X, y_s
