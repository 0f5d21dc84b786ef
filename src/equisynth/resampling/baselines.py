"""Baselines on the same strata as MCRAGE: SMOTE / SMOTE-NC and random oversampling.

The stratum index phi(target, sensitive...) is used as the "class" label of
imbalanced-learn's samplers, so the baselines fill exactly the same deficits as
:class:`equisynth.MCRAGE`. The strata columns are constant within a stratum and are
decoded with phi^-1, never interpolated.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from equisynth._utils import seed_from_rng
from equisynth.exceptions import ConfigError, StrataError
from equisynth.resampling._base import StrataSamplerBase

__all__ = ["StrataOversampler", "oversample_strata"]

logger = logging.getLogger(__name__)


class StrataOversampler(StrataSamplerBase):
    """SMOTE(-NC) or random oversampling of every stratum (target x sensitive) to its target count.

    Parameters
    ----------
    sensitive_features : str or sequence of str
        Columns of ``X`` that define the groups.
    method : {"smote", "random"}, default="smote"
        ``"smote"`` uses ``SMOTENC`` when ``X`` has categorical/binary columns besides the
        sensitive ones (``SMOTEN`` when all are categorical, ``SMOTE`` when none is);
        ``"random"`` duplicates real rows (``RandomOverSampler``).
    sampling_strategy : str, float, dict or callable, default="auto"
        See :func:`equisynth.data.strata.resolve_sampling_strategy`.
    k_neighbors : int, default=5
        Neighbours for SMOTE; reduced (with a warning) when a stratum is smaller.
    random_state : int, Generator or None

    Notes
    -----
    SMOTE cannot take missing values: numeric NaN is imputed with the median and a
    missing-indicator is added as a categorical feature; synthetic rows get NaN back where
    the indicator is set. Categorical NaN is its own level.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"AGE": rng.normal(50, 10, 60), "SEX": ["F"] * 20 + ["M"] * 40})
    >>> y = pd.Series([0, 1] * 30, name="y")
    >>> X_res, y_res = StrataOversampler(sensitive_features=["SEX"], random_state=0).fit_resample(X, y)
    >>> len(X_res)
    80
    """

    def __init__(
        self,
        *,
        sensitive_features: Sequence[str] | str,
        method: Literal["smote", "random"] = "smote",
        sampling_strategy="auto",
        k_neighbors: int = 5,
        random_state=None,
    ):
        self.sensitive_features = sensitive_features
        self.method = method
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = k_neighbors
        self.random_state = random_state

    def _check_params(self) -> None:
        _check_options(self.method, self.k_neighbors)

    def _generate(self, frame, ids, deficits, rng) -> pd.DataFrame:
        return oversample_strata(
            frame,
            ids,
            deficits,
            self.strata_,
            self.condition_on_,
            method=self.method,
            k_neighbors=self.k_neighbors,
            random_state=seed_from_rng(rng),
        )


def oversample_strata(
    frame: pd.DataFrame,
    ids: np.ndarray,
    deficits: dict[int, int],
    strata,
    strata_columns: Sequence[str],
    *,
    method: Literal["smote", "random"] = "smote",
    k_neighbors: int = 5,
    random_state: int | None = None,
) -> pd.DataFrame:
    """Synthetic rows (columns of ``frame``) filling ``deficits`` with SMOTE(-NC) or random draws.

    ``ids`` is the stratum id of each row of ``frame`` (phi); ``strata`` the fitted
    StrataIndex whose columns are decoded for the new rows.
    """
    _check_options(method, k_neighbors)
    if random_state is not None:
        random_state = int(random_state) % (2**32)  # imbalanced-learn takes 32-bit seeds
    strata_cols = list(strata_columns)
    features = [c for c in frame.columns if c not in strata_cols]
    counts = pd.Series(ids).value_counts()
    targets = {int(k): int(counts.get(k, 0)) + int(v) for k, v in deficits.items() if v > 0}
    new_ids_order = np.repeat(np.fromiter(deficits.keys(), dtype=np.int64), list(deficits.values()))
    if method == "random" or not features:
        from imblearn.over_sampling import RandomOverSampler

        pos = np.arange(len(frame)).reshape(-1, 1)
        sampler = RandomOverSampler(sampling_strategy=targets, random_state=random_state)
        pos_res, _ = sampler.fit_resample(pos, ids)
        synth = frame.iloc[pos_res[len(frame) :, 0]].reset_index(drop=True)
        return synth
    encoded, categorical, decode = _encode_features(frame[features])
    smallest = int(min(counts.get(k, 0) for k in targets))
    k = int(k_neighbors)
    if smallest < 2:
        raise StrataError(
            f"a stratum to oversample has {smallest} row; SMOTE needs at least 2 (use method='random' "
            "or merge rare levels)"
        )
    if smallest <= k:
        warnings.warn(
            f"the smallest stratum to oversample has {smallest} rows; k_neighbors reduced from {k} "
            f"to {smallest - 1} for this run",
            UserWarning,
            stacklevel=3,
        )
        k = smallest - 1
    n_cat = int(categorical.sum())
    if n_cat == 0:
        from imblearn.over_sampling import SMOTE

        sampler = SMOTE(sampling_strategy=targets, k_neighbors=k, random_state=random_state)
    elif n_cat == encoded.shape[1]:
        from imblearn.over_sampling import SMOTEN

        sampler = SMOTEN(sampling_strategy=targets, k_neighbors=k, random_state=random_state)
    else:
        from imblearn.over_sampling import SMOTENC

        sampler = SMOTENC(
            categorical_features=[int(i) for i in np.flatnonzero(categorical)],
            sampling_strategy=targets,
            k_neighbors=k,
            random_state=random_state,
        )
    X_res, y_res = sampler.fit_resample(encoded, ids)
    new = decode(X_res[len(frame) :])
    new_ids = np.asarray(y_res[len(frame) :], dtype=np.int64)
    # imblearn appends the new rows class by class; keep the deficits' order of strata.
    order = np.argsort(
        pd.Categorical(new_ids, categories=list(dict.fromkeys(new_ids_order))).codes, kind="stable"
    )
    new = new.iloc[order].reset_index(drop=True)
    new_ids = new_ids[order]
    decoded = strata.decode(new_ids).reset_index(drop=True)
    for col in strata_cols:
        new[col] = decoded[col].to_numpy()
    return new[list(frame.columns)]


def _check_options(method, k_neighbors) -> None:
    if method not in ("smote", "random"):
        raise ConfigError(f"method must be 'smote' or 'random', got {method!r}")
    if (
        not isinstance(k_neighbors, int | np.integer)
        or isinstance(k_neighbors, bool)
        or k_neighbors < 1
    ):
        raise ConfigError(f"k_neighbors must be a positive integer, got {k_neighbors!r}")


def _encode_features(df: pd.DataFrame):
    """Encode features for SMOTE(-NC): numeric floats (+ missing indicators) and category codes.

    Returns ``(array, categorical_mask, decode)`` where ``decode(array) -> DataFrame``.
    """
    blocks: list[np.ndarray] = []
    is_cat: list[bool] = []
    decoders = []
    for col in df.columns:
        s = df[col]
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        if numeric and s.nunique(dropna=True) > 2:
            values = s.to_numpy(dtype=float, na_value=np.nan)
            missing = np.isnan(values)
            median = float(np.nanmedian(values)) if (~missing).any() else 0.0
            blocks.append(np.where(missing, median, values))
            is_cat.append(False)
            integer = pd.api.types.is_integer_dtype(s) or bool(
                np.all(np.mod(values[~missing], 1) == 0)
            )
            lo, hi = np.nanmin(values), np.nanmax(values)
            if missing.any():
                blocks.append(missing.astype(float))
                is_cat.append(True)
            decoders.append(("num", col, missing.any(), integer, lo, hi))
        else:
            codes, uniques = pd.factorize(s, use_na_sentinel=False)
            blocks.append(codes.astype(float))
            is_cat.append(True)
            decoders.append(("cat", col, uniques))
    array = np.column_stack(blocks)

    def decode(arr: np.ndarray) -> pd.DataFrame:
        out = {}
        j = 0
        for spec in decoders:
            if spec[0] == "num":
                _, col, has_missing, integer, lo, hi = spec
                vals = np.clip(arr[:, j].astype(float), lo, hi)
                if integer:
                    vals = np.round(vals)
                j += 1
                if has_missing:
                    vals = np.where(arr[:, j] >= 0.5, np.nan, vals)
                    j += 1
                out[col] = vals
            else:
                _, col, uniques = spec
                codes = np.clip(np.round(arr[:, j]).astype(np.int64), 0, len(uniques) - 1)
                out[col] = np.asarray(uniques, dtype=object)[codes]
                j += 1
        return pd.DataFrame(out)

    return array, np.asarray(is_cat), decode
