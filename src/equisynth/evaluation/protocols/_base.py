"""What every protocol shares: arms, resamplers, the downstream fit and scoring of one seed."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from equisynth._utils import as_numpy_rng, seed_from_rng
from equisynth.data.schema import MAX_ABS_VALUE
from equisynth.evaluation.models import (
    CLASSIFIERS,
    feature_columns,
    make_downstream_model,
    prepare_categoricals,
)
from equisynth.exceptions import ConfigError, DataError, EquisynthError

logger = logging.getLogger(__name__)

GeneratorKind = Literal["diffusion", "empirical"]
RESAMPLING_ARMS = ("random_oversample", "smote", "mcrage", "smote_mcrage")
GENERATOR_ARMS = ("mcrage", "smote_mcrage")


@dataclass
class Split:
    """One seed's data: the base training set every resampling arm starts from, and the test set.

    ``control`` is the balanced training set of the MCRAGE protocol (``None`` elsewhere).
    ``holdout`` holds real rows that no arm trains on (the test set, plus in the MCRAGE
    protocol the female training rows left out of the base set): the reference of the
    synthetic-data quality section. Defaults to ``test``.
    """

    base: pd.DataFrame
    test: pd.DataFrame
    control: pd.DataFrame | None = None
    holdout: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        if self.holdout is None:
            self.holdout = self.test


@dataclass
class SeedResult:
    """Rows of ``results.csv`` for one seed, plus the arms' training sets (for plots)."""

    seed: int
    rows: pd.DataFrame
    training_sets: dict[str, pd.DataFrame] = field(default_factory=dict)
    test: pd.DataFrame | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    holdout: pd.DataFrame | None = None


def stratum_labels(df: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """One string label per row for the combination of ``columns`` (for stratified splits)."""
    return df[list(columns)].astype(str).agg("|".join, axis=1)


def check_arms(arms: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """Validate the requested arms (order kept, duplicates removed)."""
    arms = list(dict.fromkeys(arms))
    bad = [a for a in arms if a not in allowed]
    if bad or not arms:
        raise ConfigError(
            f"unknown arm(s) {bad}; expected a non-empty subset of {list(allowed)}"
            if bad
            else f"no arm given; expected a non-empty subset of {list(allowed)}"
        )
    return arms


@dataclass
class ProtocolBase:
    """Options shared by every protocol (see :class:`MCRAGEProtocol` and :class:`GenericProtocol`)."""

    data: pd.DataFrame
    target: str
    positive: Any
    sensitive: Sequence[str]
    arms: Sequence[str]
    classifier: str = "rf"
    include_sensitive: bool = True
    test_size: float = 0.2
    generator: GeneratorKind = "diffusion"
    generator_params: Mapping[str, Any] = field(default_factory=dict)
    model_selection: bool = True
    eval_every: int = 250
    val_size: float = 0.25
    param_grid: Sequence[Mapping[str, Any]] | None = None
    search_budget: int = 4
    exclude_columns: Sequence[str] = ()
    min_group_size: int = 10
    sampling_strategy: str | float = "auto"

    allowed_arms: ClassVar[tuple[str, ...]] = ()
    name: ClassVar[str] = "protocol"

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Check the options and the table; raise :class:`ConfigError` / :class:`DataError`."""
        if not isinstance(self.data, pd.DataFrame):
            raise DataError(f"data must be a pandas DataFrame, got {type(self.data).__name__}")
        needed = [self.target, *self.sensitive, *self.exclude_columns]
        missing = [c for c in needed if c not in self.data.columns]
        if missing:
            raise DataError(
                f"column(s) {missing} not in the table; available columns: {list(self.data.columns)}"
            )
        if self.data[self.target].isna().any():
            raise DataError(f"target column {self.target!r} has missing values; drop those rows")
        levels = self.data[self.target].unique().tolist()
        if self.positive not in levels:
            raise DataError(
                f"positive class {self.positive!r} not found in target column {self.target!r}; "
                f"its values are {sorted(map(str, levels))}"
            )
        if len(levels) != 2:
            raise DataError(
                f"target column {self.target!r} must have 2 classes, got {len(levels)}: "
                f"{sorted(map(str, levels))[:10]}"
            )
        for col in self.sensitive:
            if self.data[col].isna().any():
                raise DataError(f"sensitive column {col!r} has missing values; drop or fill them")
        for col in self.data.columns:  # the downstream models and SMOTE need finite numbers
            if pd.api.types.is_float_dtype(self.data[col]):
                values = self.data[col].to_numpy(dtype=float, na_value=np.nan)
                bad = np.isinf(values) | (np.abs(np.nan_to_num(values)) > MAX_ABS_VALUE)
                if bad.any():
                    raise DataError(
                        f"column {col!r} has {int(bad.sum())} infinite or huge value(s) such as "
                        f"{float(values[bad][0])!r}; replace them with finite values or blank them"
                    )
        if self.classifier not in CLASSIFIERS:
            raise ConfigError(
                f"classifier must be one of {list(CLASSIFIERS)}, got {self.classifier!r}"
            )
        if self.generator not in ("diffusion", "empirical"):
            raise ConfigError(
                f"generator must be 'diffusion' or 'empirical', got {self.generator!r}"
            )
        if not 0.0 < self.test_size < 1.0:
            raise ConfigError(f"test_size must be in (0, 1), got {self.test_size!r}")
        if not 0.0 < self.val_size < 1.0:
            raise ConfigError(f"val_size must be in (0, 1), got {self.val_size!r}")
        for name in ("min_group_size", "search_budget", "eval_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        strategy = self.sampling_strategy
        if isinstance(strategy, str):
            if strategy not in ("auto", "fill-to-max", "equalize-groups"):
                raise ConfigError(
                    "sampling_strategy must be 'auto', 'fill-to-max', 'equalize-groups' or a ratio "
                    f"in (0, 1], got {strategy!r}"
                )
        elif (
            isinstance(strategy, bool)
            or not isinstance(strategy, (int, float))
            or not (0.0 < float(strategy) <= 1.0)
        ):
            raise ConfigError(
                f"sampling_strategy must be a string strategy or a ratio in (0, 1], got {strategy!r}"
            )
        self.arms = check_arms(self.arms, self.allowed_arms)

    @property
    def features(self) -> list[str]:
        """The model inputs, identical for every arm."""
        return feature_columns(
            list(self.data.columns),
            target=self.target,
            sensitive=self.sensitive,
            include_sensitive=self.include_sensitive,
            exclude=self.exclude_columns,
        )

    # ------------------------------------------------------------------ per seed
    def split(self, seed: int) -> Split:  # pragma: no cover - abstract
        raise NotImplementedError

    def _base_arm(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def training_set(self, arm: str, split: Split, rng: np.random.Generator) -> pd.DataFrame:
        """The training table of ``arm`` (columns of the data + boolean ``is_synthetic``)."""
        if arm == "original":
            out = split.control.copy()
            out["is_synthetic"] = False
            return out
        if arm == self._base_arm():
            out = split.base.copy()
            out["is_synthetic"] = False
            return out
        from equisynth.evaluation.protocols._resamplers import make_arm_resampler

        columns = [c for c in split.base.columns if c != self.target]
        X = split.base[columns]
        y = split.base[self.target]
        sampler = make_arm_resampler(arm, self, random_state=seed_from_rng(rng), base=split.base)
        X_res, y_res = sampler.fit_resample(X, y)
        out = pd.DataFrame(X_res, columns=columns).reset_index(drop=True)
        out[self.target] = np.asarray(y_res)
        mask = getattr(sampler, "synthetic_mask_", None)
        if mask is None:
            mask = np.arange(len(out)) >= len(split.base)
        out["is_synthetic"] = np.asarray(mask, dtype=bool)
        return out[[*split.base.columns, "is_synthetic"]]

    def run_seed(self, seed: int, *, keep_training_sets: bool = False) -> SeedResult:
        """Build every arm for ``seed``, train the downstream model, score it on the test set."""
        from equisynth.evaluation.protocols._scoring import score_arm

        self.validate()
        try:
            split = self.split(seed)
        except ValueError as exc:  # scikit-learn's stratified split on a table too small
            if isinstance(exc, EquisynthError):
                raise
            raise DataError(
                f"cannot split the table into training and test sets (test_size="
                f"{self.test_size}): {exc} Use a larger table: every outcome x sensitive group "
                "needs several rows"
            ) from None
        rng = as_numpy_rng(seed)
        # One child seed per arm, drawn in a fixed order: an arm's result does not depend
        # on which other arms were asked for.
        arm_seeds = {arm: int(rng.integers(0, 2**31 - 1)) for arm in self.allowed_arms}
        model_seed = int(rng.integers(0, 2**31 - 1))
        features = self.features
        X_test = prepare_categoricals(split.test[features])
        y_test = (split.test[self.target] == self.positive).to_numpy()
        frames, sets, seconds = [], {}, {}
        for arm in self.arms:
            start = time.perf_counter()
            train = self.training_set(arm, split, as_numpy_rng(arm_seeds[arm]))
            X_train = prepare_categoricals(train[features])
            y_train = (train[self.target] == self.positive).to_numpy()
            model = make_downstream_model(self.classifier, X_train, random_state=model_seed)
            model.fit(X_train, y_train)
            y_score = model.predict_proba(X_test)[:, 1]
            y_pred = model.predict(X_test)
            frames.append(
                score_arm(
                    y_test,
                    y_pred,
                    y_score,
                    split.test[list(self.sensitive)],
                    seed=seed,
                    arm=arm,
                    min_group_size=self.min_group_size,
                )
            )
            seconds[arm] = time.perf_counter() - start
            logger.info(
                "seed %d arm %s: %d training rows, %.1fs", seed, arm, len(train), seconds[arm]
            )
            if keep_training_sets:
                sets[arm] = train
        rows = pd.concat(frames, ignore_index=True)
        return SeedResult(
            seed=seed,
            rows=rows,
            training_sets=sets,
            test=split.test if keep_training_sets else None,
            seconds=seconds,
            holdout=split.holdout if keep_training_sets else None,
        )
