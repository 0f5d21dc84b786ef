"""Bad inputs end in equisynth errors that name the column and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from equisynth.exceptions import DataError, EquisynthError, StrataError
from equisynth.resampling import MCRAGE, StrataOversampler, validate_resampling_input


def data(n=40):
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"AGE": rng.normal(50, 5, n), "SEX": ["F", "M"] * (n // 2)})
    return X, pd.Series([0, 0, 1, 1] * (n // 4), name="SOURCE")


def test_missing_sensitive_column_is_named():
    X, y = data()
    with pytest.raises(DataError, match="column 'RACE' given in sensitive_features is not in X"):
        MCRAGE(sensitive_features=["RACE"]).fit_resample(X, y)


def test_one_class_target():
    X, _ = data()
    with pytest.raises(DataError, match="target 'SOURCE' has a single class 'in'"):
        StrataOversampler(sensitive_features=["SEX"]).fit_resample(
            X, pd.Series(["in"] * len(X), name="SOURCE")
        )


def test_nan_in_target_and_sensitive_column_counted():
    X, y = data()
    y2 = y.astype(float)
    y2.iloc[[1, 3]] = np.nan
    with pytest.raises(DataError, match="target 'SOURCE' has 2 missing"):
        validate_resampling_input(X, y2, ["SEX"])
    X2 = X.copy()
    X2.loc[0, "SEX"] = None
    with pytest.raises(DataError, match="sensitive column 'SEX' has 1 missing"):
        validate_resampling_input(X2, y, ["SEX"])


def test_single_stratum():
    X = pd.DataFrame({"SEX": ["F"] * 10, "A": np.arange(10.0)})
    with pytest.raises(
        StrataError, match=r"only one stratum of \(SOURCE, SEX\).*SOURCE='in', SEX='F'"
    ):
        MCRAGE(sensitive_features=["SEX"]).fit_resample(X, pd.Series(["in"] * 10, name="SOURCE"))


def test_numeric_sensitive_with_many_levels_asks_for_bins():
    X, y = data()
    with pytest.raises(DataError, match=r"sensitive column 'AGE' is numeric .* bin it"):
        validate_resampling_input(X, y, ["AGE"])


def test_non_dataframe_and_length_mismatch():
    X, y = data()
    with pytest.raises(TypeError, match="DataFrame"):
        validate_resampling_input(X.to_numpy(), y, ["SEX"])
    with pytest.raises(EquisynthError, match="y has 39 values but X has 40 rows"):
        validate_resampling_input(X, y.iloc[:-1], ["SEX"])


def test_bad_options_are_config_errors():
    X, y = data()
    with pytest.raises(ValueError, match="method must be"):
        StrataOversampler(sensitive_features=["SEX"], method="adasyn").fit_resample(X, y)
    with pytest.raises(ValueError, match="smote_first"):
        MCRAGE(sensitive_features=["SEX"], smote_first="gan").fit_resample(X, y)
