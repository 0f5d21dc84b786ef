"""Downstream classifiers shared by every arm of an experiment.

Every arm of an experiment trains the *same* model on the *same* features: one
preprocessing pipeline (impute missing values, one-hot encode categoricals, scale
numeric columns for logistic regression) fitted on that arm's training set, then
one of three scikit-learn classifiers. Whether the sensitive attributes are model
inputs is an explicit option, fixed for all arms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from equisynth.exceptions import ConfigError, DataError

__all__ = ["CLASSIFIERS", "ClassifierName", "feature_columns", "make_downstream_model"]

ClassifierName = Literal["rf", "lr", "hgb"]
CLASSIFIERS: tuple[str, ...] = ("rf", "lr", "hgb")


def feature_columns(
    columns: Sequence[str],
    *,
    target: str,
    sensitive: Sequence[str],
    include_sensitive: bool = True,
    exclude: Sequence[str] = (),
) -> list[str]:
    """The model inputs: every column but the target, ``exclude`` and (optionally) the sensitive ones.

    Examples
    --------
    >>> feature_columns(["AGE", "SEX", "SOURCE"], target="SOURCE", sensitive=["SEX"],
    ...                 include_sensitive=False)
    ['AGE']
    """
    drop = {target, *exclude}
    if not include_sensitive:
        drop.update(sensitive)
    features = [c for c in columns if c not in drop]
    if not features:
        raise DataError(
            f"no feature column left after removing target {target!r}, {list(exclude)} and "
            f"(include_sensitive={include_sensitive}) {list(sensitive)}; columns: {list(columns)}"
        )
    return features


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def make_downstream_model(
    name: ClassifierName,
    X: pd.DataFrame,
    *,
    random_state: int | None = None,
) -> Pipeline:
    """An unfitted pipeline (preprocessing + classifier) for the columns of ``X``.

    Numeric columns are median-imputed (and standardised for ``"lr"``); other
    columns are most-frequent-imputed and one-hot encoded (unknown levels ignored).

    Parameters
    ----------
    name : {"rf", "lr", "hgb"}
        Random forest (the MCRAGE paper's model), logistic regression, or
        histogram gradient boosting.
    X : DataFrame
        Feature table; only its columns and dtypes are used.
    random_state : int, optional
        Seed of the classifier.

    Examples
    --------
    >>> X = pd.DataFrame({"age": [30, 40, 50, 60], "sex": ["F", "M", "F", "M"]})
    >>> model = make_downstream_model("lr", X, random_state=0).fit(X, [0, 1, 0, 1])
    >>> model.predict(X).shape
    (4,)
    """
    if name not in CLASSIFIERS:
        raise ConfigError(f"classifier must be one of {list(CLASSIFIERS)}, got {name!r}")
    numeric = [c for c in X.columns if _is_numeric(X[c])]
    categorical = [c for c in X.columns if c not in numeric]
    num_steps: list = [("impute", SimpleImputer(strategy="median"))]
    if name == "lr":
        num_steps.append(("scale", StandardScaler()))
    cat_pipe = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    pre = ColumnTransformer(
        [("num", Pipeline(num_steps), numeric), ("cat", cat_pipe, categorical)],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    if name == "rf":
        clf = RandomForestClassifier(n_estimators=100, n_jobs=1, random_state=random_state)
    elif name == "lr":
        clf = LogisticRegression(max_iter=1000)
    else:
        clf = HistGradientBoostingClassifier(random_state=random_state)
    return Pipeline([("preprocess", pre), ("classifier", clf)])


def prepare_categoricals(X: pd.DataFrame) -> pd.DataFrame:
    """Cast object / category / bool columns to ``str`` so the imputer and encoder see one type."""
    out = X.copy()
    for col in out.columns:
        if not _is_numeric(out[col]):
            values = out[col]
            out[col] = values.astype(str).astype(object).where(values.notna(), np.nan)
    return out
