"""The FairSynth experiment: four arms on longitudinal EHR, scored on held-out real patients.

Per seed: a patient-level train/test split of the task stratified by group x label; every arm
builds its training set from the same real training patients, the same downstream
:class:`~equisynth.downstream.SequenceClassifier` (same settings, same seed) is trained on it and
scored **only on the real test patients** (never on synthetic ones):

- ``real``: the real training patients;
- ``real_synth``: + patients of the generator trained with ``lambda = 0`` (no feedback);
- ``real_oversample``: + double-prioritised replicas of real patients;
- ``real_fairsynth``: + the ``R'`` kept by the FairSynth feedback loop.

Grids (``grid`` with ``grid_values``), each setting written into the ``arm`` column as
``"<arm>@<setting>"``:

- ``"real"``: ``n_real=v`` real training patients (a stratified subsample of the training split,
  the same for every arm of the setting), synthetic total fixed at ``n_synth`` (default: the
  ``fill`` total of the whole training split);
- ``"synth"``: the whole training split plus ``n_synth=v`` synthetic (or replicated) patients;
- ``"lambda"``: ``real``, ``real_synth`` and ``real_oversample`` once, and ``real_fairsynth@lambda=v``
  for each value: the generator trained with that fixed ``lambda``, one round, no feedback.

Besides the test metrics of :func:`equisynth.fairness.metrics.score_predictions`, each arm adds
facts about its training set: ``n_train_real``, ``n_train_synthetic`` and, for the feedback loop,
``fairsynth_lambda`` (the kept round's lambda) and ``fairsynth_best_round``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from equisynth._utils import as_numpy_rng, seed_from_rng
from equisynth.data.tasks import SequenceTask
from equisynth.evaluation.protocols._base import SeedResult, check_arms
from equisynth.evaluation.protocols._scoring import RESULT_COLUMNS, score_arm
from equisynth.exceptions import ConfigError, DataError
from equisynth.resampling.ehr_baselines import (
    DoublePrioritizedOversampler,
    EmpiricalEHRGenerator,
    RealSynth,
    resolve_group_amounts,
    stratified_split,
)
from equisynth.resampling.fairsynth import OBJECTIVES, FairSynth

__all__ = ["FAIRSYNTH_ARMS", "GENERATOR_ARMS", "FairSynthProtocol"]

logger = logging.getLogger(__name__)

FAIRSYNTH_ARMS = ("real", "real_synth", "real_oversample", "real_fairsynth")
#: Arms whose added patients come from the generator (the quality section scores them).
GENERATOR_ARMS = ("real_synth", "real_fairsynth")
Grid = Literal["real", "synth", "lambda"]


@dataclass(frozen=True)
class Setting:
    """One point of a grid: its label (``None`` without a grid) and what it changes."""

    label: str | None = None
    n_real: int | None = None
    synth_per_group: Any = "fill"
    fairness_lambda: float | None = None


def arm_name(arm: str, setting: Setting) -> str:
    return arm if setting.label is None else f"{arm}@{setting.label}"


@dataclass
class FairSynthProtocol:
    """The FairSynth experiment on a :class:`~equisynth.data.tasks.SequenceTask`.

    Parameters
    ----------
    task : SequenceTask
        All patients (real); split per seed.
    sensitive : sequence of str
        Demographic columns defining the groups (intersections).
    arms : sequence of str, default all of :data:`FAIRSYNTH_ARMS`
    objective : {"disparate_impact", "worst_group_tpr"}, default="disparate_impact"
        What the feedback loop maximises (and the generator's fairness term).
    test_size : float, default=0.2
    grid : {None, "real", "synth", "lambda"}, default=None
    grid_values : sequence of numbers
        The grid's settings (see the module docstring).
    n_synth : int, optional
        Synthetic total of the ``"real"`` grid (default: the ``fill`` total of the training split).
    synth_per_group : "fill", float, int or dict, default="fill"
        Amounts of the augmenting arms without a grid (and of the lambda grid).
    min_group_patients : int, default=10
        Groups with fewer real training patients get no added patients.
    generator : {"halo", "empirical"}, default="halo"
        :class:`~equisynth.generators.ehr.HALOGenerator`, or a test double copying real patients.
    generator_params : mapping
        Keyword arguments of the generator.
    downstream_params : mapping
        Keyword arguments of :class:`~equisynth.downstream.SequenceClassifier` (every arm and the
        loop's feedback model).
    fairsynth_params : mapping
        Keyword arguments of :class:`~equisynth.resampling.fairsynth.FairSynth` (``n_rounds``,
        ``lambda_init``, ``lambdas``, ``adapt``, ``val_size``, ...).
    min_group_size : int, default=10
        Fewest test patients behind a group rate.

    Examples
    --------
    >>> p = FairSynthProtocol(task=task, sensitive=["race"], arms=["real", "real_oversample"])  # doctest: +SKIP
    >>> p.run_seed(0).rows.head()  # doctest: +SKIP
    """

    task: SequenceTask
    sensitive: Sequence[str]
    arms: Sequence[str] = FAIRSYNTH_ARMS
    objective: str = "disparate_impact"
    test_size: float = 0.2
    grid: Grid | None = None
    grid_values: Sequence[float] = ()
    n_synth: int | None = None
    synth_per_group: Any = "fill"
    min_group_patients: int = 10
    generator: Literal["halo", "empirical"] = "halo"
    generator_params: Mapping[str, Any] = field(default_factory=dict)
    downstream_params: Mapping[str, Any] = field(default_factory=dict)
    fairsynth_params: Mapping[str, Any] = field(default_factory=dict)
    min_group_size: int = 10

    allowed_arms: ClassVar[tuple[str, ...]] = FAIRSYNTH_ARMS
    name: ClassVar[str] = "fairsynth"
    longitudinal: ClassVar[bool] = True

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Check the options and the task; raise :class:`ConfigError` / :class:`DataError`."""
        if not isinstance(self.task, SequenceTask):
            raise DataError(f"task must be a SequenceTask, got {type(self.task).__name__}")
        if isinstance(self.sensitive, str) or not list(self.sensitive):
            raise ConfigError(f"sensitive must name one or more columns, got {self.sensitive!r}")
        cols = list(self.task.demographics.columns)
        missing = [c for c in self.sensitive if c not in cols]
        if missing:
            raise DataError(
                f"sensitive column(s) {missing} are not demographics of the task; "
                f"choose from {cols}"
            )
        classes = np.unique(self.task.label)
        if len(classes) < 2:
            raise DataError(
                f"task {self.task.task!r} has a single label class ({int(classes[0])}) in its "
                f"{self.task.n_patients} patients; choose another task or cohort"
            )
        if self.objective not in OBJECTIVES:
            raise ConfigError(
                f"objective must be one of {list(OBJECTIVES)}, got {self.objective!r}"
            )
        if not (isinstance(self.test_size, float) and 0.0 < self.test_size < 1.0):
            raise ConfigError(f"test_size must be in (0, 1), got {self.test_size!r}")
        if self.generator not in ("halo", "empirical"):
            raise ConfigError(f"generator must be 'halo' or 'empirical', got {self.generator!r}")
        for name in ("min_group_size", "min_group_patients"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        self.arms = check_arms(self.arms, self.allowed_arms)
        self._check_grid()

    def _check_grid(self) -> None:
        if self.grid is None:
            if list(self.grid_values):
                raise ConfigError(
                    "grid_values given without a grid; set grid to real, synth or lambda"
                )
            return
        if self.grid not in ("real", "synth", "lambda"):
            raise ConfigError(f"grid must be 'real', 'synth' or 'lambda', got {self.grid!r}")
        values = list(self.grid_values)
        if not values:
            raise ConfigError(f"grid {self.grid!r} needs one or more values")
        if self.grid == "lambda":
            if any(not np.isfinite(float(v)) or float(v) < 0 for v in values):
                raise ConfigError(f"lambda grid values must be numbers >= 0, got {values}")
            return
        n_train = self.task.n_patients - int(np.ceil(self.test_size * self.task.n_patients))
        for v in values:
            if float(v) != int(float(v)) or int(float(v)) < 0:
                raise ConfigError(f"{self.grid} grid values must be whole numbers >= 0, got {v!r}")
            if self.grid == "real" and not 20 <= int(float(v)) <= n_train:
                raise ConfigError(
                    f"real grid value {v!r} must be between 20 and the {n_train} training patients"
                )

    def _base_arm(self) -> str:
        return "real"

    # ------------------------------------------------------------------ pieces
    def settings(self) -> list[Setting]:
        """The grid's settings (one ``Setting()`` without a grid)."""
        if self.grid is None:
            return [Setting(synth_per_group=self.synth_per_group)]
        out = []
        for v in self.grid_values:
            if self.grid == "real":
                out.append(Setting(label=f"n_real={int(float(v))}", n_real=int(float(v))))
            elif self.grid == "synth":
                n = int(float(v))
                out.append(Setting(label=f"n_synth={n}", synth_per_group=n))
            else:
                lam = float(v)
                out.append(
                    Setting(
                        label=f"lambda={lam:g}",
                        synth_per_group=self.synth_per_group,
                        fairness_lambda=lam,
                    )
                )
        return out

    def generator_template(self):
        """An unfitted generator for the generator arms."""
        if self.generator == "empirical":
            return EmpiricalEHRGenerator()
        from equisynth.generators.ehr import HALOGenerator

        return HALOGenerator(**dict(self.generator_params))

    def downstream_model(self, random_state: int):
        from equisynth.downstream import SequenceClassifier

        return SequenceClassifier(**dict(self.downstream_params), random_state=random_state)

    def _subsample(self, train: SequenceTask, n: int, seed: int) -> SequenceTask:
        if n >= train.n_patients:
            return train
        keep, _ = stratified_split(
            train, self.sensitive, 1.0 - n / train.n_patients, np.random.default_rng(seed)
        )
        return train.subset(keep)

    def training_set(
        self, arm: str, train: SequenceTask, setting: Setting, seed: int, n_synth: int
    ) -> tuple[SequenceTask, dict[str, float]]:
        """The training task of ``arm`` in ``setting`` and facts about it (extra metric rows)."""
        amounts = n_synth if setting.n_real is not None else setting.synth_per_group
        common = dict(sensitive=list(self.sensitive), min_group_patients=self.min_group_patients)
        extra: dict[str, float] = {}
        if arm == "real":
            out = train.subset(np.arange(train.n_patients))
        elif arm == "real_oversample":
            sampler = DoublePrioritizedOversampler(
                **common, synth_per_group=amounts, random_state=seed
            )
            out = sampler.fit_augment(train)
        elif arm == "real_synth" or setting.fairness_lambda is not None:
            lam = 0.0 if arm == "real_synth" else float(setting.fairness_lambda)
            out = RealSynth(
                generator=self.generator_template(),
                **common,
                synth_per_group=amounts,
                fairness_lambda=lam,
                objective=self.objective,
                random_state=seed,
            ).fit_augment(train)
        else:
            params = {"val_size": 0.2, **dict(self.fairsynth_params)}
            loop = FairSynth(
                generator=self.generator_template(),
                **common,
                objective=self.objective,
                synth_per_group=amounts,
                downstream=self.downstream_model(0),
                random_state=seed,
                **params,
            )
            out = loop.fit_augment(train)
            extra["fairsynth_lambda"] = float(loop.history_["lambda"].iloc[loop.best_round_])
            extra["fairsynth_best_round"] = float(loop.best_round_)
        extra["n_train_real"] = float((~out.is_synthetic).sum())
        extra["n_train_synthetic"] = float(out.is_synthetic.sum())
        return out, extra

    def _runs(self) -> list[tuple[str, Setting]]:
        """(arm, setting) pairs in report order: arms outer (as the backends merge them),
        settings inner; in the lambda grid only ``real_fairsynth`` has settings."""
        settings = self.settings()
        plain = Setting(synth_per_group=self.synth_per_group)
        runs = []
        for arm in self.arms:
            if self.grid == "lambda" and arm != "real_fairsynth":
                runs.append((arm, plain))
            else:
                runs += [(arm, s) for s in settings]
        return runs

    # ------------------------------------------------------------------ per seed
    def run_seed(self, seed: int, *, keep_training_sets: bool = False) -> SeedResult:
        """Split, build every arm's training set, train the downstream model, score on test."""
        self.validate()
        rng = as_numpy_rng(seed)
        train_idx, test_idx = stratified_split(self.task, self.sensitive, self.test_size, rng)
        # One child seed per arm and one per setting, drawn in a fixed order: an arm's
        # result does not depend on which other arms were asked for.
        arm_seeds = {arm: int(rng.integers(0, 2**31 - 1)) for arm in self.allowed_arms}
        model_seed = int(rng.integers(0, 2**31 - 1))
        setting_seed = int(rng.integers(0, 2**31 - 1))
        train, test = self.task.subset(train_idx), self.task.subset(test_idx)
        counts = train.groups(self.sensitive).value_counts().sort_index()
        n_synth = self.n_synth
        if n_synth is None:
            fill = resolve_group_amounts(counts, "fill", min_count=self.min_group_patients)
            n_synth = int(sum(fill.values()))
        y_test = test.label.astype(bool)
        sens_test = test.demographics[list(self.sensitive)]
        frames, sets, seconds = [], {}, {}
        index = {s.label: k for k, s in enumerate(self.settings())}
        for arm, setting in self._runs():
            name = arm_name(arm, setting)
            start = time.perf_counter()
            k = index.get(setting.label, 0)
            base = train
            if setting.n_real is not None:
                base = self._subsample(
                    train, setting.n_real, seed_from_rng(np.random.default_rng([setting_seed, k]))
                )
            arm_seed = seed_from_rng(np.random.default_rng([arm_seeds[arm], k]))
            data, extra = self.training_set(arm, base, setting, arm_seed, n_synth)
            model = self.downstream_model(model_seed).fit(data)
            y_score = model.predict_proba(test)[:, 1]
            y_pred = model.predict(test).astype(bool)
            rows = score_arm(
                y_test,
                y_pred,
                y_score,
                sens_test,
                seed=seed,
                arm=name,
                min_group_size=self.min_group_size,
            )
            facts = pd.DataFrame(
                [(seed, name, m, "all", v) for m, v in extra.items()], columns=RESULT_COLUMNS
            )
            frames.append(pd.concat([rows, facts], ignore_index=True))
            seconds[name] = time.perf_counter() - start
            logger.info(
                "seed %d arm %s: %d real + %d synthetic training patients, %.1fs",
                seed,
                name,
                int(extra["n_train_real"]),
                int(extra["n_train_synthetic"]),
                seconds[name],
            )
            if keep_training_sets:
                sets[name] = data
        return SeedResult(
            seed=seed,
            rows=pd.concat(frames, ignore_index=True),
            training_sets=sets,
            test=test if keep_training_sets else None,
            seconds=seconds,
            holdout=test if keep_training_sets else None,
        )
