"""Common machinery of every strata sampler: validation, strata, strategy, output assembly."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from imblearn.base import BaseSampler

from equisynth._utils import as_numpy_rng
from equisynth.resampling._validation import validate_resampling_input

__all__ = ["StrataSamplerBase"]

logger = logging.getLogger(__name__)


class StrataSamplerBase(BaseSampler):
    """Base of MCRAGE and the baselines: fills the deficits of the strata (target x sensitive).

    Subclasses implement ``_generate(frame, ids, deficits, rng) -> DataFrame`` which returns
    the synthetic rows (columns of ``frame``: the features then the target) for the
    deficits ``{stratum id: number of new rows}``.

    ``fit_resample`` returns the real rows first, unchanged and in their order, then the
    synthetic rows, with a fresh ``RangeIndex`` (as imbalanced-learn does for DataFrames).
    """

    _sampling_type = "over-sampling"

    # ------------------------------------------------------------ contract
    def fit(self, X, y):
        """Run :meth:`fit_resample` and keep only the learned state."""
        self.fit_resample(X, y)
        return self

    def _fit_resample(self, X, y):  # imblearn's abstract hook; fit_resample is overridden
        return self.fit_resample(X, y)

    def _sensitive_list(self) -> list[str]:
        s = self.sensitive_features
        return [s] if isinstance(s, str) else list(s)

    def fit_resample(self, X, y):
        """Resample ``X`` (a DataFrame with the sensitive columns) and ``y``.

        Returns
        -------
        X_res : DataFrame
            Real rows first (unchanged, in order), then synthetic rows; fresh RangeIndex;
            same columns and dtypes as ``X``.
        y_res : Series or ndarray
            Same type as ``y``.
        """
        from equisynth.data.strata import StrataIndex, resolve_sampling_strategy

        self._check_params()
        sensitive = self._sensitive_list()
        X_df, y_s = validate_resampling_input(X, y, sensitive)
        target = str(y_s.name)
        rng = as_numpy_rng(self.random_state)

        frame = X_df.copy()
        frame[target] = y_s.to_numpy()
        frame = frame.reset_index(drop=True)
        strata = StrataIndex([target, *sensitive]).fit(frame)
        ids = strata.encode(frame)
        counts = strata.counts(frame)
        deficits = resolve_sampling_strategy(
            self.sampling_strategy,
            counts,
            strata,
            target=target,
            sensitive=sensitive,
            min_rows=getattr(self, "min_stratum_size", 10),
        )
        deficits = {int(k): int(v) for k, v in deficits.items() if int(v) > 0}
        self.n_features_in_ = X_df.shape[1]
        self.feature_names_in_ = np.asarray(X_df.columns, dtype=object)
        self.strata_ = strata
        self.strata_counts_ = counts
        self.empty_strata_ = [strata.levels_of(int(s)) for s in counts.index[counts == 0]]
        self.deficits_ = deficits
        self.sampling_strategy_ = {int(k): int(counts.loc[k]) + v for k, v in deficits.items()}
        self.target_name_ = target
        self.condition_on_ = [target, *sensitive]
        logger.info("filling %d strata with %d new rows", len(deficits), sum(deficits.values()))

        n_new = sum(deficits.values())
        if n_new:
            synth = self._generate(frame, ids, deficits, rng)
            synth = _restore_dtypes(synth[list(frame.columns)], frame)
        else:
            synth = frame.iloc[:0]
        X_res = pd.concat([X_df, synth[list(X_df.columns)]], ignore_index=True)
        X_res = _restore_dtypes(X_res, X_df)
        y_all = np.concatenate([y_s.to_numpy(), synth[target].to_numpy()])
        self.synthetic_mask_ = np.r_[np.zeros(len(X_df), bool), np.ones(len(synth), bool)]
        if isinstance(y, pd.Series | pd.DataFrame):
            y_res = pd.Series(y_all, name=y_s.name if isinstance(y, pd.Series) else None).astype(
                y_s.dtype
            )
            if isinstance(y, pd.DataFrame):
                y_res = y_res.to_frame(y.columns[0])
        else:
            y_res = y_all.astype(np.asarray(y).dtype)
        return X_res, y_res

    def _conditions(self, deficits: dict[int, int]) -> pd.DataFrame:
        """The conditions frame (one row per new row) for ``deficits``, via phi^-1."""
        ids = np.repeat(np.fromiter(deficits.keys(), dtype=np.int64), list(deficits.values()))
        return self.strata_.decode(ids).reset_index(drop=True)

    def _check_params(self) -> None:
        """Validate hyperparameters (subclasses extend it); called first in ``fit_resample``."""

    def _generate(self, frame, ids, deficits, rng) -> pd.DataFrame:  # pragma: no cover
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True
        return tags


def _restore_dtypes(df: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """Cast each column of ``df`` to the dtype of the same column of ``like`` (rounding integers)."""
    out = df.copy()
    for col in like.columns:
        dtype = like[col].dtype
        if out[col].dtype == dtype:
            continue
        values = out[col]
        if pd.api.types.is_integer_dtype(dtype) and pd.api.types.is_float_dtype(values):
            values = values.round()
        try:
            out[col] = values.astype(dtype)
        except (TypeError, ValueError):
            logger.debug("could not restore dtype %s of column %s", dtype, col)
    return out
