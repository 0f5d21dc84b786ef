"""Model selection of the diffusion generator by downstream F1 on a validation split.

The MCRAGE paper keeps the generator checkpoint whose synthetic rows give the best
downstream F1. :class:`CheckpointSelectedGenerator` does this honestly: it holds out
a stratified validation split of the (imbalanced) training table it is given, trains
the generator on the rest, and at every ``eval_every`` steps fills the strata of the
fitting part, trains the downstream model on fitting part + synthetic rows and scores
F1 on the real validation rows. The test set is never seen. With ``param_grid`` it
also runs a small hyperparameter search (at most ``search_budget`` settings, e.g.
over ``guidance_scale`` or ``n_iter``) scored the same way.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from equisynth._utils import as_numpy_rng, seed_from_rng
from equisynth.evaluation.models import make_downstream_model, prepare_categoricals
from equisynth.exceptions import ConfigError, NotFittedError

logger = logging.getLogger(__name__)

__all__ = ["CheckpointSelectedGenerator", "fill_to_max_conditions", "strategy_conditions"]


def _real_row_mask(df: pd.DataFrame, real_rows: pd.DataFrame) -> np.ndarray:
    """Which rows of ``df`` are rows of ``real_rows`` (compared by value, as text).

    MCRAGE's SMOTE-first variant hands the generator the real rows followed by SMOTE rows;
    the validation split must only hold the real ones.
    """
    cols = list(real_rows.columns)

    def keys(frame):
        parts = {}
        for c in cols:
            col = frame[c]
            if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
                col = col.astype(float).round(9)
            parts[c] = col.astype(str)
        return pd.util.hash_pandas_object(pd.DataFrame(parts), index=False)

    df_keys, real_keys = keys(df).to_numpy(), keys(real_rows).to_numpy()
    n = len(real_keys)
    if len(df_keys) >= n and (df_keys[:n] == real_keys).all():
        # MCRAGE puts the real rows first, in order: copies among the extra rows stay out.
        return np.arange(len(df_keys)) < n
    mask = np.isin(df_keys, real_keys)
    if mask.sum() < len(real_rows):
        raise ConfigError(
            f"model selection found {int(mask.sum())} of the {len(real_rows)} real rows in the "
            "generator's table; real_rows must be the real part of that table"
        )
    return mask


def fill_to_max_conditions(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Condition rows that fill every observed stratum of ``columns`` up to the largest one.

    Examples
    --------
    >>> df = pd.DataFrame({"s": ["a", "a", "a", "b"]})
    >>> fill_to_max_conditions(df, ["s"])["s"].tolist()
    ['b', 'b']
    """
    counts = df.groupby(list(columns), observed=True, dropna=False).size()
    deficit = counts.max() - counts
    frames = [
        pd.DataFrame([key if isinstance(key, tuple) else (key,)] * int(n), columns=list(columns))
        for key, n in deficit.items()
        if n > 0
    ]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=df[c].dtype) for c in columns})
    out = pd.concat(frames, ignore_index=True)
    for col in columns:
        out[col] = out[col].astype(df[col].dtype)
    return out


def strategy_conditions(df: pd.DataFrame, columns: Sequence[str], strategy) -> pd.DataFrame:
    """Condition rows that a resampler with ``sampling_strategy=strategy`` would generate.

    ``columns`` are ``(target, *sensitive)``; ``"auto"`` / ``"fill-to-max"`` is
    :func:`fill_to_max_conditions`, other strategies go through
    :func:`equisynth.data.strata.resolve_sampling_strategy`, as in the samplers.

    Examples
    --------
    >>> import warnings
    >>> df = pd.DataFrame({"y": [0, 0, 1, 0, 0, 1, 1, 0], "s": list("aaaaaabb")})
    >>> with warnings.catch_warnings():  # strata of fewer than 10 rows
    ...     warnings.simplefilter("ignore")
    ...     strategy_conditions(df, ["y", "s"], "equalize-groups").value_counts().to_dict()
    {(0, 'b'): 2, (1, 'b'): 2}
    """
    if isinstance(strategy, str) and strategy in ("auto", "fill-to-max"):
        return fill_to_max_conditions(df, columns)
    from equisynth.data.strata import StrataIndex, resolve_sampling_strategy

    columns = list(columns)
    strata = StrataIndex(columns).fit(df)
    per_id = resolve_sampling_strategy(
        strategy, strata.counts(df), strata, target=columns[0], sensitive=columns[1:]
    )
    ids = np.repeat(
        np.array(list(per_id), dtype=np.int64), [max(0, int(n)) for n in per_id.values()]
    )
    out = strata.decode(ids).reset_index(drop=True)
    for col in columns:
        out[col] = out[col].astype(df[col].dtype)
    return out


class CheckpointSelectedGenerator(BaseEstimator):
    """A :class:`~equisynth.generators.tabular.TabularDiffusionGenerator` whose checkpoint
    (and optionally hyperparameters) is chosen by downstream F1 on a validation split.

    Follows the ``ConditionalGenerator`` protocol (``fit(df, *, condition_on)`` /
    ``sample(conditions, *, random_state)``), so it drops into :class:`equisynth.MCRAGE`.

    Parameters
    ----------
    target, positive : outcome column and its positive class
    sensitive : sequence of str
    features : sequence of str
        Inputs of the downstream model (the experiment's features).
    classifier : {"rf", "lr", "hgb"}
    generator_params : mapping
        Keyword arguments of ``TabularDiffusionGenerator``.
    param_grid : mapping or list of mappings, optional
        Settings to try on top of ``generator_params``. A list of single settings
        (``[{"guidance_scale": 1.0}, {"guidance_scale": 2.0}]``) is run in order, the first
        ``search_budget`` of them; a grid of lists (``{"guidance_scale": [1, 2, 3],
        "lr": [1e-3, 2e-3]}``, scikit-learn's ``ParameterGrid`` format) is run whole when it
        has at most ``search_budget`` settings, else ``search_budget`` settings are drawn
        from it at random (``ParameterSampler``, seeded).
    search_budget : int, default=4
    eval_every : int, default=250
        Training steps between checkpoint evaluations.
    val_size : float, default=0.25
    real_rows : DataFrame, optional
        The real training rows. When the table given to ``fit`` also holds synthetic
        rows (SMOTE first, then the generator), the validation rows are drawn from the
        real ones only, so no synthetic row is ever scored.
    sampling_strategy : str or float, default="auto"
        The strategy of the sampler that will use this generator: the synthetic rows scored
        at each checkpoint are the ones that strategy adds to the fitting part.
    random_state : int or None

    Attributes
    ----------
    generator_ : TabularDiffusionGenerator
        The selected model (best checkpoint loaded).
    history_ : list of dict
        One record per evaluated checkpoint: params, step, f1.
    best_ : dict
        The selected record.
    """

    def __init__(
        self,
        *,
        target: str,
        positive: Any,
        sensitive: Sequence[str],
        features: Sequence[str],
        classifier: str = "rf",
        generator_params: Mapping[str, Any] | None = None,
        param_grid: Mapping[str, Sequence] | Sequence[Mapping[str, Any]] | None = None,
        search_budget: int = 4,
        eval_every: int = 250,
        val_size: float = 0.25,
        real_rows: pd.DataFrame | None = None,
        sampling_strategy="auto",
        random_state=None,
    ):
        self.target = target
        self.positive = positive
        self.sensitive = sensitive
        self.features = features
        self.classifier = classifier
        self.generator_params = generator_params
        self.param_grid = param_grid
        self.search_budget = search_budget
        self.eval_every = eval_every
        self.val_size = val_size
        self.sampling_strategy = sampling_strategy
        self.real_rows = real_rows
        self.random_state = random_state

    def _score(self, fit_part, val_part, synthetic, model_seed) -> float:
        train = pd.concat([fit_part, synthetic[fit_part.columns]], ignore_index=True)
        X = prepare_categoricals(train[list(self.features)])
        y = (train[self.target] == self.positive).to_numpy()
        if len(np.unique(y)) < 2:
            return 0.0
        model = make_downstream_model(self.classifier, X, random_state=model_seed).fit(X, y)
        y_val = (val_part[self.target] == self.positive).to_numpy()
        y_pred = model.predict(prepare_categoricals(val_part[list(self.features)]))
        return float(f1_score(y_val, y_pred, zero_division=0))

    def _validation_split(self, df, condition_on, rng) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(fitting part, validation part); validation rows are drawn from real rows only."""
        df = df.reset_index(drop=True)
        is_real = np.ones(len(df), dtype=bool)
        if self.real_rows is not None and len(df) > len(self.real_rows):
            is_real = _real_row_mask(df, self.real_rows)
        real = df[is_real]
        labels = real[condition_on].astype(str).agg("|".join, axis=1)
        stratify = labels if labels.value_counts().min() >= 2 else None
        _, val_idx = train_test_split(
            real.index.to_numpy(),
            test_size=self.val_size,
            stratify=stratify,
            random_state=int(rng.integers(2**31 - 1)),
        )
        in_val = df.index.isin(val_idx)
        return df[~in_val].reset_index(drop=True), df[in_val].reset_index(drop=True)

    def _grid(self, rng) -> list[dict]:
        """The settings to try: all of ``param_grid`` within the budget, else a random subset."""
        from sklearn.model_selection import ParameterGrid, ParameterSampler

        if self.param_grid is None:
            return [{}]
        grid = self.param_grid
        if isinstance(grid, Mapping):
            grid = {k: list(v) for k, v in grid.items()}
        else:
            grid = [dict(g) for g in grid]
            if all(not isinstance(v, list | tuple) for g in grid for v in g.values()):
                # a list of single settings: keep their order, cut at the budget
                return grid[: self.search_budget] or [{}]
            grid = [{k: list(v) for k, v in g.items()} for g in grid]
        full = list(ParameterGrid(grid))
        if len(full) <= self.search_budget:
            return full
        sampler = ParameterSampler(
            grid, n_iter=self.search_budget, random_state=int(rng.integers(2**31 - 1))
        )
        return list(sampler)

    def fit(self, df: pd.DataFrame, *, condition_on: Sequence[str]) -> CheckpointSelectedGenerator:
        """Train one generator per setting, keep the checkpoint with the best validation F1."""
        from equisynth.generators.tabular import TabularDiffusionGenerator

        if not isinstance(self.search_budget, int) or self.search_budget < 1:
            raise ConfigError(
                f"search_budget must be a positive integer, got {self.search_budget!r}"
            )
        if not isinstance(self.eval_every, int) or self.eval_every < 1:
            raise ConfigError(f"eval_every must be a positive integer, got {self.eval_every!r}")
        condition_on = list(condition_on)
        missing = [c for c in (self.target, *self.features) if c not in df.columns]
        if missing:
            raise ConfigError(
                f"model selection needs column(s) {missing}, absent from the generator's table"
            )
        rng = as_numpy_rng(self.random_state)
        fit_part, val_part = self._validation_split(df, condition_on, rng)
        val_counts = val_part.groupby(condition_on, observed=True).size()
        self.validation_counts_ = {
            " & ".join(
                f"{c}={v}"
                for c, v in zip(condition_on, k if isinstance(k, tuple) else (k,), strict=True)
            ): int(n)
            for k, n in val_counts.items()
        }
        small = {k: n for k, n in self.validation_counts_.items() if n < 10}
        if small:
            logger.warning(
                "model selection: validation strata with fewer than 10 real rows %s; the "
                "selected checkpoint rests on few rows of those strata",
                small,
            )
        # the synthetic rows scored at each checkpoint are those the arm's strategy would add
        conditions = strategy_conditions(fit_part, condition_on, self.sampling_strategy)
        sample_seed = seed_from_rng(rng)
        model_seed = int(rng.integers(2**31 - 1))
        base = dict(self.generator_params or {})
        grid = self._grid(rng)

        self.history_: list[dict] = []
        best = {"f1": -np.inf}
        best_state = None
        best_gen = None
        for setting in grid:
            params = {**base, **setting}
            gen = TabularDiffusionGenerator(**params, random_state=seed_from_rng(rng))
            n_before = len(self.history_)

            def evaluate(step, g, params=params, setting=setting):
                nonlocal best, best_state, best_gen
                synthetic = g.sample(conditions, random_state=sample_seed)
                f1 = self._score(fit_part, val_part, synthetic, model_seed)
                record = {"params": setting, "step": int(step), "f1": f1}
                self.history_.append(record)
                logger.info("checkpoint %s step %d: validation F1 %.4f", setting, step, f1)
                if f1 > best["f1"]:
                    best = record
                    best_state = copy.deepcopy(g.ema_model_.state_dict())
                    best_gen = g

            gen.fit(
                fit_part, condition_on=condition_on, callback=evaluate, eval_every=self.eval_every
            )
            last_step = int(params.get("n_iter", gen.n_iter))
            if len(self.history_) == n_before or self.history_[-1]["step"] != last_step:
                evaluate(last_step, gen)
        best_gen.model_.load_state_dict(best_state)
        best_gen.model_.eval()
        best_gen.ema_model_ = best_gen.model_
        self.generator_ = best_gen
        self.best_ = best
        return self

    def sample(self, conditions: pd.DataFrame, *, random_state=None) -> pd.DataFrame:
        """Sample from the selected checkpoint (see ``TabularDiffusionGenerator.sample``)."""
        if not hasattr(self, "generator_"):
            raise NotFittedError("CheckpointSelectedGenerator.sample called before fit")
        return self.generator_.sample(conditions, random_state=random_state)
