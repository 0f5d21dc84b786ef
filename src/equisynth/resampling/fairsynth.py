"""FairSynth (Bin Tarek, Poulain, Beheshti): synthetic EHR tuned by downstream fairness feedback.

:class:`FairSynth` runs the outer loop of the method on a :class:`~equisynth.data.tasks.SequenceTask`:

1. split a validation set of **real** patients off the training task (patient-level,
   stratified by group x label); the generator and the downstream model never train on it;
2. per round ``r``: train the generator on the rest with ``L = L_BCE + lambda_r * L_F``
   (``L_F`` the differentiable K-group fairness loss of the objective), sample ``R'`` with
   ``amounts_r`` patients per group, train the downstream model on ``R + R'`` and measure the
   objective (disparate impact or worst-group TPR, the minimum over groups) on the validation
   patients;
3. adapt ``lambda`` and the per-group amounts for the next round (rule below);
4. keep the best ``R'``: the highest validation objective among the *eligible* rounds, those whose
   validation AUROC and balanced accuracy (``floor_metrics``) are each at least the real-only
   model's minus ``floor_tolerance`` (ties: higher AUROC, then the earlier round); if no round is
   eligible, the round with the highest AUROC. The balanced-accuracy floor matters: disparate
   impact is 1 for a model that predicts every patient positive, and AUROC alone (a ranking
   metric) does not see that.

Adaptation rule (``adapt`` names which knobs move):

- ``"lambda"``: with an explicit ``lambdas`` list, round ``r`` uses ``lambdas[r]`` (a grid
  search). Otherwise a line search: after a round that is the best so far, ``lambda`` is
  multiplied by ``lambda_factor`` (a zero ``lambda`` becomes ``lambda_init`` or 1); after a worse
  round it moves half way back to the best round's ``lambda``.
- ``"amounts"``: the group with the lowest validation rate behind the objective (selection rate
  for disparate impact, TPR for worst-group TPR; groups below ``min_group_size`` are not scored)
  gets ``ceil(amount_step * largest group)`` more synthetic patients next round.
- ``"weights"``: when the generator has ``group_weights``, that worst group's weight in the
  fairness loss is doubled (the generator is then retrained).

The generator is retrained only when ``lambda`` or the weights change; it keeps the same seed in
every round, so rounds differ by the knobs, not by luck. With ``warm_start`` (HALO), it is trained
once without the fairness term and every round fine-tunes that model with the round's ``lambda``
(``warm_epochs``), which is cheaper than training from scratch each round. What is returned is **every real
patient of the input** (the validation patients are given back: the caller's downstream model
should not lose real data to the loop) followed by the best round's ``R'``.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from equisynth._utils import as_numpy_rng, seed_from_rng
from equisynth.data.tasks import SequenceTask
from equisynth.exceptions import ConfigError
from equisynth.fairness.metrics import score_predictions
from equisynth.resampling.ehr_baselines import (
    GroupAmounts,
    _check_task,
    configure,
    default_generator,
    double_prioritized_oversample,
    generate_for_groups,
    resolve_group_amounts,
    stratified_split,
)

__all__ = ["OBJECTIVES", "FairSynth", "double_prioritized_oversample", "validation_metrics"]

logger = logging.getLogger(__name__)

Objective = Literal["disparate_impact", "worst_group_tpr"]
#: objective -> the per-group rate whose minimum it raises
OBJECTIVES = {"disparate_impact": "selection_rate", "worst_group_tpr": "tpr"}
_ADAPT = ("lambda", "amounts", "weights")


def default_downstream():
    """The downstream model of the loop: :class:`~equisynth.downstream.SequenceClassifier`."""
    from equisynth.downstream import SequenceClassifier

    return SequenceClassifier()


def validation_metrics(
    model, val: SequenceTask, sensitive: Sequence[str], *, min_group_size: int
) -> tuple[dict[str, float], pd.DataFrame]:
    """(overall metrics, per-group rates) of a fitted downstream model on real patients."""
    proba = model.predict_proba(val)[:, 1]
    pred = model.predict(val).astype(bool)
    rows = score_predictions(
        val.label.astype(bool),
        pred,
        proba,
        sensitive_features=val.demographics[list(sensitive)],
        pos_label=True,
        min_group_size=min_group_size,
    )
    overall = rows[rows["group"] == "all"].set_index("metric")["value"].astype(float)
    per_group = rows[rows["group"] != "all"].pivot(index="group", columns="metric", values="value")
    return overall.to_dict(), per_group


def _present(amounts: dict[str, int], groups: set[str]) -> dict[str, int]:
    """``amounts`` without the groups that have no patient to condition on."""
    missing = [g for g, n in amounts.items() if n > 0 and g not in groups]
    if missing:
        logger.info("no patient of group(s) %s in the training part: none generated", missing)
    return {g: (n if g in groups else 0) for g, n in amounts.items()}


def _key(value: float) -> float:
    return -math.inf if value is None or not np.isfinite(value) else float(value)


class FairSynth(BaseEstimator):
    """The FairSynth feedback loop: generator + downstream fairness feedback on real patients.

    Parameters
    ----------
    generator : unfitted generator, optional
        Default :class:`~equisynth.generators.ehr.HALOGenerator`. Each round trains a copy with
        ``fairness=objective``, ``fairness_lambda=lambda_r`` and ``sensitive``.
    sensitive : sequence of str
        Demographic columns whose intersection defines the groups.
    objective : {"disparate_impact", "worst_group_tpr"}, default="disparate_impact"
        Validation metric maximised by the loop (both are 1 at best) and fairness term of the
        generator.
    n_rounds : int, default=3
        Outer iterations.
    lambda_init : float, default=1.0
        ``lambda`` of the first round (ignored when ``lambdas`` is given).
    lambdas : sequence of float, optional
        One ``lambda`` per round (a grid search) instead of the adaptive rule.
    lambda_factor : float, default=2.0
        Growth of ``lambda`` after an improving round (adaptive rule).
    adapt : sequence of {"lambda", "amounts", "weights"}, default=("lambda", "amounts")
        Which knobs move between rounds.
    synth_per_group : "fill", float, int or dict, default="fill"
        Round-0 amounts (see :mod:`equisynth.resampling.ehr_baselines`), computed on the whole
        input task: by default every group up to the largest one.
    min_group_patients : int, default=10
        Groups with fewer real patients get no synthetic patients (nor more in later rounds).
    amount_step : float, default=0.25
        Extra patients for the worst group per round, as a share of the largest group.
    downstream : unfitted classifier, optional
        Default :class:`~equisynth.downstream.SequenceClassifier`; ``fit(task)``,
        ``predict_proba(task)``, ``predict(task)``.
    val_size : float, default=0.2
        Share of the real patients held out for validation.
    min_group_size : int, default=5
        Fewest validation patients behind a group rate (positives for TPR); smaller groups
        are not scored (they would make the choice of ``R'`` a coin toss).
    floor_metrics : sequence of str, default=("auroc", "balanced_accuracy")
        Validation metrics a round must keep (fairness must not be bought with a useless model).
    floor_tolerance : float, default=0.05
        A round is eligible when each of ``floor_metrics`` is at least the real-only model's
        value minus this.
    warm_start : bool, default=True
        When the generator's ``fit`` takes ``init`` (HALO): train it once with ``lambda = 0``
        (its own ``n_epochs``), then make every round's generator by fine-tuning that one for
        ``warm_epochs`` epochs with the round's ``lambda``; otherwise every round trains from
        scratch.
    warm_epochs : int, optional
        Fine-tuning epochs per round (default: a third of the generator's ``n_epochs``, >= 1).
    random_state : None or int
    verbose : bool, default=False

    Attributes
    ----------
    history_ : DataFrame
        One row per round: ``round, lambda, n_synthetic, n_synth[<group>] ..., val_<metric>
        ..., val_objective, worst_group, eligible, refit, seconds``.
    best_round_ : int
    synthetic_ : SequenceTask
        The best round's synthetic patients.
    generator_ : the best round's fitted generator
    val_reference_ : dict
        Validation metrics of the downstream model trained on the real training part alone.
    floors_ : dict
        The eligibility floor of each of ``floor_metrics``.
    validation_ids_ : ndarray of str
        The real patients used for validation (returned in the output like the others).

    Examples
    --------
    >>> fs = FairSynth(sensitive=["race"], n_rounds=2, random_state=0)  # doctest: +SKIP
    >>> augmented = fs.fit_augment(task)  # doctest: +SKIP
    >>> fs.history_[["round", "lambda", "val_objective"]]  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        generator=None,
        sensitive: Sequence[str],
        objective: Objective = "disparate_impact",
        n_rounds: int = 3,
        lambda_init: float = 1.0,
        lambdas: Sequence[float] | None = None,
        lambda_factor: float = 2.0,
        adapt: Sequence[str] = ("lambda", "amounts"),
        synth_per_group: GroupAmounts = "fill",
        min_group_patients: int = 10,
        amount_step: float = 0.25,
        downstream=None,
        val_size: float = 0.2,
        min_group_size: int = 5,
        floor_metrics: Sequence[str] = ("auroc", "balanced_accuracy"),
        floor_tolerance: float = 0.05,
        warm_start: bool = True,
        warm_epochs: int | None = None,
        random_state=None,
        verbose: bool = False,
    ) -> None:
        self.generator = generator
        self.sensitive = sensitive
        self.objective = objective
        self.n_rounds = n_rounds
        self.lambda_init = lambda_init
        self.lambdas = lambdas
        self.lambda_factor = lambda_factor
        self.adapt = adapt
        self.synth_per_group = synth_per_group
        self.min_group_patients = min_group_patients
        self.amount_step = amount_step
        self.downstream = downstream
        self.val_size = val_size
        self.min_group_size = min_group_size
        self.floor_metrics = floor_metrics
        self.floor_tolerance = floor_tolerance
        self.warm_start = warm_start
        self.warm_epochs = warm_epochs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _validate(self) -> list[float] | None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(
                f"objective must be one of {list(OBJECTIVES)}, got {self.objective!r}"
            )
        if (
            isinstance(self.n_rounds, bool)
            or not isinstance(self.n_rounds, int)
            or self.n_rounds < 1
        ):
            raise ConfigError(f"n_rounds must be a positive integer, got {self.n_rounds!r}")
        for name in ("lambda_init", "amount_step", "floor_tolerance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
        if not (isinstance(self.lambda_factor, (int, float)) and self.lambda_factor > 1):
            raise ConfigError(f"lambda_factor must be > 1, got {self.lambda_factor!r}")
        known = ("auroc", "balanced_accuracy", "f1", "accuracy", "auprc")
        if isinstance(self.floor_metrics, str) or any(m not in known for m in self.floor_metrics):
            raise ConfigError(
                f"floor_metrics must be a list drawn from {list(known)}, got {self.floor_metrics!r}"
            )
        bad = [a for a in self.adapt if a not in _ADAPT]
        if bad or isinstance(self.adapt, str):
            raise ConfigError(f"adapt must be a list drawn from {list(_ADAPT)}, got {self.adapt!r}")
        if isinstance(self.min_group_size, bool) or not isinstance(self.min_group_size, int):
            raise ConfigError(
                f"min_group_size must be a positive integer, got {self.min_group_size!r}"
            )
        if self.min_group_size < 1:
            raise ConfigError(
                f"min_group_size must be a positive integer, got {self.min_group_size!r}"
            )
        we = self.warm_epochs
        if we is not None and (isinstance(we, bool) or not isinstance(we, int) or we < 1):
            raise ConfigError(f"warm_epochs must be None or a positive integer, got {we!r}")
        if self.lambdas is None:
            return None
        lambdas = [float(x) for x in self.lambdas]
        if len(lambdas) != self.n_rounds or any(not np.isfinite(x) or x < 0 for x in lambdas):
            raise ConfigError(
                f"lambdas must hold n_rounds={self.n_rounds} numbers >= 0, got {list(self.lambdas)}"
            )
        return lambdas

    # ------------------------------------------------------------------ loop
    def fit_augment(self, task: SequenceTask) -> SequenceTask:
        """Run the loop on ``task``; return its real patients followed by the best ``R'``."""
        lambdas = self._validate()
        sensitive = list(self.sensitive)
        groups_all = _check_task(task, sensitive)
        rng = as_numpy_rng(self.random_state)
        train_idx, val_idx = stratified_split(task, sensitive, float(self.val_size), rng)
        real, val = task.subset(train_idx), task.subset(val_idx)
        self.validation_ids_ = val.patient_ids.copy()
        gen_seed, down_seed, sample_seed = (seed_from_rng(rng) for _ in range(3))
        gen_template = self.generator if self.generator is not None else default_generator()
        down_template = self.downstream if self.downstream is not None else default_downstream()
        counts = groups_all.value_counts().sort_index()
        real_groups = set(real.groups(sensitive))
        amounts = resolve_group_amounts(
            counts, self.synth_per_group, min_count=self.min_group_patients
        )
        step = math.ceil(float(self.amount_step) * int(counts.max()))

        ref_model = configure(down_template, random_state=down_seed).fit(real)
        self.val_reference_, _ = validation_metrics(
            ref_model, val, sensitive, min_group_size=self.min_group_size
        )
        self.floors_ = {}
        for m in self.floor_metrics:
            ref = float(self.val_reference_.get(m, float("nan")))
            self.floors_[m] = ref - float(self.floor_tolerance) if np.isfinite(ref) else -math.inf
        metric_rate = OBJECTIVES[self.objective]
        weights = None
        if "weights" in self.adapt and hasattr(gen_template, "group_weights"):
            weights = {g: 1.0 for g in counts.index}
        base, warm_epochs = None, None
        if self.warm_start and "init" in inspect.signature(gen_template.fit).parameters:
            base = configure(
                gen_template,
                fairness=None,
                fairness_lambda=0.0,
                group_weights=None,
                sensitive=tuple(sensitive),
                random_state=gen_seed,
            ).fit(real)
            n_epochs = int(getattr(gen_template, "n_epochs", 3))
            warm_epochs = self.warm_epochs or max(1, n_epochs // 3)
        lam = lambdas[0] if lambdas is not None else float(self.lambda_init)
        records, best, best_key = [], None, None
        gen, fitted_with = None, None
        for r in range(self.n_rounds):
            start = time.perf_counter()
            knobs = (lam, None if weights is None else tuple(sorted(weights.items())))
            refit = gen is None or knobs != fitted_with
            if refit:
                params = dict(
                    fairness=self.objective,
                    fairness_lambda=float(lam),
                    sensitive=tuple(sensitive),
                    random_state=gen_seed,
                )
                if weights is not None:
                    params["group_weights"] = dict(weights)
                if base is not None:  # fine-tune the lambda = 0 generator
                    gen = configure(gen_template, **params, n_epochs=warm_epochs)
                    gen.fit(real, init=base)
                else:
                    gen = configure(gen_template, **params)
                    gen.fit(real)
                fitted_with = knobs
            # conditions come from the generator's own training patients: a validation patient
            # may carry a demographic level the generator never saw
            effective = _present(amounts, real_groups)
            synth = generate_for_groups(gen, real, sensitive, effective, sample_seed)
            model = configure(down_template, random_state=down_seed).fit(real.concat(synth))
            overall, per_group = validation_metrics(
                model, val, sensitive, min_group_size=self.min_group_size
            )
            rates = (
                per_group[metric_rate].dropna()
                if metric_rate in per_group
                else pd.Series(dtype=float)
            )
            # the group the objective is held down by (none when every scored group ties)
            worst = str(rates.idxmin()) if len(rates) > 1 and rates.max() > rates.min() else ""
            objective = overall.get(self.objective, float("nan"))
            auroc = overall.get("auroc", float("nan"))
            eligible = all(
                not np.isfinite(overall.get(m, np.nan)) or overall[m] >= floor
                for m, floor in self.floors_.items()
            )
            rec = {"round": r, "lambda": float(lam), "n_synthetic": synth.n_patients}
            rec.update({f"n_synth[{g}]": int(effective[str(g)]) for g in counts.index})
            rec.update({f"val_{m}": float(v) for m, v in overall.items()})
            rec.update(
                val_objective=float(objective),
                worst_group=worst,
                eligible=bool(eligible),
                refit=bool(refit),
                seconds=time.perf_counter() - start,
            )
            records.append(rec)
            # eligible rounds rank by objective, then AUROC; others only by AUROC
            key = (
                (True, _key(objective), _key(auroc))
                if eligible
                else (False, _key(auroc), _key(objective))
            )
            improved = best_key is None or key > best_key
            if improved:
                best_key, best = key, (r, synth, gen)
            logger.info(
                "FairSynth round %d: lambda=%.4g, %d synthetic, val %s=%.4f, AUROC=%.4f, "
                "worst group %s%s%s",
                r,
                lam,
                synth.n_patients,
                self.objective,
                objective,
                auroc,
                worst or "n/a",
                "" if eligible else " (below the floors)",
                " (best so far)" if improved else "",
            )
            if r + 1 == self.n_rounds:
                break
            # --- adapt the knobs for the next round
            if "lambda" in self.adapt:
                if lambdas is not None:
                    lam = lambdas[r + 1]
                elif improved:
                    lam = lam * float(self.lambda_factor) if lam > 0 else (self.lambda_init or 1.0)
                else:
                    lam = 0.5 * (lam + records[best[0]]["lambda"])
            if worst and "amounts" in self.adapt and counts[worst] >= self.min_group_patients:
                amounts = {**amounts, worst: amounts[worst] + step}
            if worst and weights is not None:
                weights = {**weights, worst: weights[worst] * 2.0}
        self.history_ = pd.DataFrame.from_records(records)
        self.best_round_, self.synthetic_, self.generator_ = best
        self.synthetic_mask_ = np.r_[
            np.zeros(task.n_patients, dtype=bool), np.ones(self.synthetic_.n_patients, dtype=bool)
        ]
        logger.info(
            "FairSynth: best round %d of %d (%d synthetic patients)",
            self.best_round_,
            self.n_rounds,
            self.synthetic_.n_patients,
        )
        return task.subset(np.arange(task.n_patients)).concat(self.synthetic_)
