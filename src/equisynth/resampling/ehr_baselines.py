"""Baselines of the FairSynth experiment on longitudinal EHR, and the pieces they share.

Every augmenter has ``fit_augment(task) -> SequenceTask``: all patients of ``task`` unchanged and in
their order, then the added patients (``is_synthetic`` True).

- :class:`RealOnly`: the real patients alone.
- :class:`RealSynth`: real + patients sampled from the same generator as FairSynth trained with
  ``fairness_lambda = 0`` (no fairness term, no feedback loop).
- :class:`DoublePrioritizedOversampler` (:func:`double_prioritized_oversample`): replicas of real
  patients of the under-represented groups, positive outcomes first.

The FairSynth loop itself is :class:`equisynth.resampling.fairsynth.FairSynth`.

Group amounts (``synth_per_group``), the same for every augmenting arm:

- ``"fill"`` (default): every group (intersection of the sensitive attributes) up to the size of
  the largest group, so the largest gets nothing;
- a float ``r`` in (0, 1]: every group up to ``ceil(r * largest)``;
- an int ``N``: ``N`` patients in total, split over the groups in proportion to their ``"fill"``
  deficits (largest-remainder rounding; in proportion to the group sizes when every group is
  already as large as the largest);
- a dict ``{group label: n}``, group labels as :meth:`SequenceTask.groups` writes them
  (``"race=black"``, ``"gender=F & race=black"``); groups not named get 0.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from equisynth._utils import as_numpy_rng, seed_from_rng
from equisynth.data.tasks import SequenceTask
from equisynth.exceptions import ConfigError, DataError

__all__ = [
    "DoublePrioritizedOversampler",
    "EmpiricalEHRGenerator",
    "RealOnly",
    "RealSynth",
    "configure",
    "double_prioritized_oversample",
    "generate_for_groups",
    "resolve_group_amounts",
    "stratified_split",
]

logger = logging.getLogger(__name__)

GroupAmounts = str | float | int | Mapping[str, int]


# ---------------------------------------------------------------------------- helpers
def _check_task(task, sensitive: Sequence[str]) -> pd.Series:
    if not isinstance(task, SequenceTask):
        raise DataError(
            f"expected a SequenceTask (equisynth.data.tasks), got {type(task).__name__}"
        )
    if task.n_patients == 0:
        raise DataError("the task holds no patient")
    if isinstance(sensitive, str) or not list(sensitive):
        raise ConfigError(
            f"sensitive must be a non-empty list of demographic columns, got {sensitive!r}"
        )
    return task.groups(list(sensitive))


def configure(estimator, **params):
    """An unfitted copy of ``estimator`` with ``params`` set (only those it knows).

    scikit-learn estimators are cloned (``sklearn.base.clone`` + ``set_params``); anything
    else is deep-copied and the attributes are set.
    """
    import copy

    if isinstance(estimator, BaseEstimator):
        known = estimator.get_params(deep=False)
        out = clone(estimator)
        out.set_params(**{k: v for k, v in params.items() if k in known})
        return out
    out = copy.deepcopy(estimator)
    for key, value in params.items():
        if hasattr(out, key):
            setattr(out, key, value)
    return out


def stratified_split(
    task: SequenceTask, sensitive: Sequence[str], test_size: float, random_state=None
) -> tuple[np.ndarray, np.ndarray]:
    """Patient-level split stratified by group x label: ``(train positions, test positions)``.

    Strata with a single patient are pooled (a stratified split needs two per stratum); a
    lone leftover joins the largest stratum. Positions are sorted.
    """
    from sklearn.model_selection import train_test_split

    groups = _check_task(task, sensitive)
    if not (isinstance(test_size, float) and 0.0 < test_size < 1.0):
        raise ConfigError(f"the split size must be a float in (0, 1), got {test_size!r}")
    strata = (groups + " | label=" + pd.Series(task.label).astype(str)).to_numpy(dtype=object)
    values, counts = np.unique(strata, return_counts=True)
    rare = np.isin(strata, values[counts < 2])
    strata[rare] = "__rare__"
    if rare.sum() == 1:
        values, counts = np.unique(strata[~rare], return_counts=True)
        strata[rare] = values[np.argmax(counts)]
    rng = as_numpy_rng(random_state)
    try:
        train, test = train_test_split(
            np.arange(task.n_patients),
            test_size=test_size,
            stratify=strata,
            random_state=int(rng.integers(2**31 - 1)),
        )
    except ValueError as exc:
        raise DataError(
            f"cannot split {task.n_patients} patients with test_size={test_size} stratified by "
            f"group x label ({len(set(strata))} strata): {exc}. Use more patients or fewer "
            "sensitive attributes"
        ) from None
    return np.sort(train), np.sort(test)


def resolve_group_amounts(
    counts: pd.Series, strategy: GroupAmounts = "fill", *, min_count: int = 1
) -> dict[str, int]:
    """New patients per group (see the module docstring for the strategies).

    Parameters
    ----------
    counts : Series
        Patients per group label.
    strategy : "fill", float, int or dict
    min_count : int, default=1
        Groups with fewer real patients get nothing (a generator cannot learn a group from a
        handful of patients, and replicas of two patients are no data); they still count for
        the size of the largest group.

    Examples
    --------
    >>> counts = pd.Series({"a": 10, "b": 4, "c": 1})
    >>> resolve_group_amounts(counts, "fill")
    {'a': 0, 'b': 6, 'c': 9}
    >>> resolve_group_amounts(counts, 5)
    {'a': 0, 'b': 2, 'c': 3}
    """
    out = _resolve(counts.astype(int), strategy, min_count)
    small = [g for g, n in counts.items() if n < min_count and out[str(g)] > 0]
    if small:
        logger.info("no new patients for group(s) %s (fewer than %d patients)", small, min_count)
    return {g: (0 if counts[g] < min_count else n) for g, n in out.items()}


def _resolve(counts: pd.Series, strategy, min_count: int) -> dict[str, int]:
    largest = int(counts.max())
    if isinstance(strategy, str):
        if strategy not in ("fill", "auto", "fill-to-max"):
            raise ConfigError(
                f"synth_per_group must be 'fill', a ratio in (0, 1], a total count or a dict, "
                f"got {strategy!r}"
            )
        return {str(g): largest - int(n) for g, n in counts.items()}
    if isinstance(strategy, Mapping):
        unknown = [g for g in strategy if g not in counts.index]
        if unknown:
            raise ConfigError(
                f"synth_per_group names unknown group(s) {unknown}; the groups are "
                f"{list(map(str, counts.index))}"
            )
        out = {str(g): 0 for g in counts.index}
        for g, n in strategy.items():
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
                raise ConfigError(f"synth_per_group[{g!r}] must be an integer >= 0, got {n!r}")
            out[str(g)] = int(n)
        return out
    if isinstance(strategy, bool):
        raise ConfigError(f"synth_per_group must not be a boolean, got {strategy!r}")
    if isinstance(strategy, (float, np.floating)):
        if not 0.0 < strategy <= 1.0:
            raise ConfigError(f"a synth_per_group ratio must be in (0, 1], got {strategy!r}")
        goal = math.ceil(strategy * largest)
        return {str(g): max(0, goal - int(n)) for g, n in counts.items()}
    if isinstance(strategy, (int, np.integer)):
        if strategy < 0:
            raise ConfigError(f"a synth_per_group total must be >= 0, got {strategy!r}")
        weights = (largest - counts).astype(float).where(counts >= min_count, 0.0)
        if weights.sum() == 0:
            weights = counts.astype(float).where(counts >= min_count, 0.0)
        if weights.sum() == 0:
            return {str(g): 0 for g in counts.index}
        share = weights / weights.sum() * int(strategy)
        base = np.floor(share).astype(int)
        left = int(strategy) - int(base.sum())
        order = np.argsort(-(share - base).to_numpy(), kind="stable")[:left]
        base.iloc[order] += 1
        return {str(g): int(n) for g, n in base.items()}
    raise ConfigError(
        f"synth_per_group must be 'fill', a ratio, a total count or a dict, got {strategy!r}"
    )


def _empty_like(task: SequenceTask) -> SequenceTask:
    return task.subset(np.zeros(0, dtype=np.int64))


def generate_for_groups(
    generator,
    task: SequenceTask,
    sensitive: Sequence[str],
    amounts: Mapping[str, int],
    random_state=None,
) -> SequenceTask:
    """Sample ``amounts[g]`` synthetic patients of every group ``g`` from a fitted generator.

    The demographic conditions of group ``g`` are the demographics of real patients of ``g``
    drawn with replacement (so the other demographic columns follow the group's real mix);
    the label is not conditioned: it is drawn from the generator, whose label model is what the
    fairness term shapes. Returns the synthetic patients (``is_synthetic`` True, ids
    ``synth-0 ...``), group after group.
    """
    rng = as_numpy_rng(random_state)
    groups = _check_task(task, sensitive).to_numpy()
    picks = []
    for g, k in amounts.items():
        if k <= 0:
            continue
        pool = np.flatnonzero(groups == g)
        if not len(pool):
            raise DataError(f"group {g!r} has no patient to take demographic conditions from")
        picks.append(rng.choice(pool, size=int(k), replace=True))
    if not picks:
        return _empty_like(task)
    idx = np.concatenate(picks)
    conditions = task.demographics.iloc[idx].reset_index(drop=True)
    synth = generator.sample(conditions=conditions, random_state=seed_from_rng(rng))
    if not isinstance(synth, SequenceTask) or synth.n_patients != len(idx):
        raise DataError(
            f"the generator returned {getattr(synth, 'n_patients', type(synth).__name__)} "
            f"patients for {len(idx)} conditions; expected one SequenceTask patient per row"
        )
    demo = synth.demographics[list(task.demographics.columns)].astype(str).reset_index(drop=True)
    if not demo[list(sensitive)].equals(conditions[list(sensitive)].astype(str)):
        raise DataError("the generator did not keep the sensitive attributes it was conditioned on")
    return SequenceTask(
        patient_ids=np.array([f"synth-{i}" for i in range(len(idx))]),
        demographics=demo,
        label=synth.label,
        visits=synth.visits,
        vocab=list(task.vocab),
        task=task.task,
        is_synthetic=np.ones(len(idx), dtype=bool),
    )


# ---------------------------------------------------------------------------- DPO
def _replicate(pool: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` positions from ``pool``, each patient used floor(k/n) or ceil(k/n) times."""
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.resize(rng.permutation(pool), k)


def double_prioritized_oversample(
    task: SequenceTask,
    sensitive: Sequence[str],
    *,
    synth_per_group: GroupAmounts = "fill",
    target_share: float | None = None,
    min_group_patients: int = 1,
    random_state=None,
) -> SequenceTask:
    """Double-prioritised oversampling: replicate minority-group patients, positives first.

    Rule, per group ``g`` with ``n_g`` patients of which ``p_g`` positive and ``a_g`` new
    patients to add (``synth_per_group``; by default every group up to the largest group):

    1. ``k_pos = min(a_g, max(0, ceil(t * (n_g + a_g)) - p_g))`` replicas of positive patients
       of ``g``, where ``t`` is ``target_share`` (default: the positive share of the largest
       group, the first in sorted order on ties), so that the group's positive share rises to
       ``t`` if the budget allows;
    2. ``a_g - k_pos`` replicas of negative patients of ``g`` (of positives if ``g`` has none).

    Groups with fewer than ``min_group_patients`` patients get no replicas.

    Within a cell (group x label) the patients are replicated round-robin over a random
    permutation, so each is copied ``floor(k / n)`` or ``ceil(k / n)`` times. A group without
    positive patients gets negative replicas only (logged).

    Returns
    -------
    SequenceTask
        The patients of ``task`` unchanged, then the replicas (ids ``"<id>#dup<k>"``,
        ``is_synthetic`` True), group after group (sorted), positives first.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> t = SequenceTask(patient_ids=np.arange(6).astype(str),
    ...                  demographics=pd.DataFrame({"g": list("aaaabb")}),
    ...                  label=np.array([1, 1, 0, 0, 0, 1]),
    ...                  visits=[[np.array([0])]] * 6, vocab=["dx:0"])
    >>> out = double_prioritized_oversample(t, ["g"], random_state=0)
    >>> out.label[6:].tolist()  # b grows from 2 to 4; one more positive gives a's share 0.5
    [1, 0]
    """
    groups = _check_task(task, sensitive)
    rng = as_numpy_rng(random_state)
    counts = groups.value_counts().sort_index()
    amounts = resolve_group_amounts(counts, synth_per_group, min_count=min_group_patients)
    pos_share = pd.Series(task.label).groupby(groups.to_numpy()).mean().sort_index()
    if target_share is None:
        t = float(pos_share[counts.idxmax()])
    elif isinstance(target_share, (int, float)) and 0.0 <= target_share <= 1.0:
        t = float(target_share)
    else:
        raise ConfigError(f"target_share must be None or in [0, 1], got {target_share!r}")
    g_arr, y = groups.to_numpy(), task.label
    picks = []
    for g in counts.index:
        a = amounts[str(g)]
        if a <= 0:
            continue
        pos = np.flatnonzero((g_arr == g) & (y == 1))
        neg = np.flatnonzero((g_arr == g) & (y == 0))
        n_g, p_g = int(counts[g]), len(pos)
        k_pos = min(a, max(0, math.ceil(t * (n_g + a) - 1e-9) - p_g)) if p_g else 0
        if not p_g:
            logger.info("group %s has no positive patient: %d negative replicas only", g, a)
        k_neg = a - k_pos
        if not len(neg):
            k_pos, k_neg = a, 0
        picks += [_replicate(pos, k_pos, rng), _replicate(neg, k_neg, rng)]
        logger.info("DPO group %s: +%d positive, +%d negative replicas", g, k_pos, k_neg)
    idx = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    added = task.subset(idx)
    seen: dict[str, int] = {}
    ids = []
    for pid in added.patient_ids:
        seen[pid] = seen.get(pid, 0) + 1
        ids.append(f"{pid}#dup{seen[pid]}")
    added.patient_ids = np.array(ids, dtype=str)
    added.is_synthetic = np.ones(len(idx), dtype=bool)
    real = task.subset(np.arange(task.n_patients))
    return real.concat(added)


# ---------------------------------------------------------------------------- augmenters
class RealOnly(BaseEstimator):
    """The Real-only arm: ``fit_augment`` returns the real patients unchanged."""

    def fit_augment(self, task: SequenceTask) -> SequenceTask:
        if not isinstance(task, SequenceTask):
            raise DataError(f"expected a SequenceTask, got {type(task).__name__}")
        return task.subset(np.arange(task.n_patients))


class DoublePrioritizedOversampler(BaseEstimator):
    """The Real+Oversample arm (see :func:`double_prioritized_oversample` for the rule)."""

    def __init__(
        self,
        *,
        sensitive: Sequence[str],
        synth_per_group: GroupAmounts = "fill",
        target_share: float | None = None,
        min_group_patients: int = 10,
        random_state=None,
    ) -> None:
        self.sensitive = sensitive
        self.synth_per_group = synth_per_group
        self.target_share = target_share
        self.min_group_patients = min_group_patients
        self.random_state = random_state

    def fit_augment(self, task: SequenceTask) -> SequenceTask:
        out = double_prioritized_oversample(
            task,
            list(self.sensitive),
            synth_per_group=self.synth_per_group,
            target_share=self.target_share,
            min_group_patients=self.min_group_patients,
            random_state=self.random_state,
        )
        self.synthetic_mask_ = out.is_synthetic.copy()
        return out


def default_generator():
    """The generator of the FairSynth arms: :class:`equisynth.generators.ehr.HALOGenerator`."""
    from equisynth.generators.ehr import HALOGenerator

    return HALOGenerator()


class RealSynth(BaseEstimator):
    """The Real+Synth arm: the FairSynth generator with ``fairness_lambda = 0``, no feedback.

    Parameters
    ----------
    generator : unfitted generator, optional
        Default :class:`~equisynth.generators.ehr.HALOGenerator`; a copy is trained with
        ``fairness_lambda=0`` (or ``fairness_lambda`` when given: one point of a lambda sweep).
    sensitive : sequence of str
    synth_per_group : "fill", float, int or dict, default="fill"
    min_group_patients : int, default=10
        Groups with fewer real patients get no synthetic patients.
    fairness_lambda : float, default=0.0
    objective : str, default="disparate_impact"
        The fairness term given to the generator (irrelevant when ``fairness_lambda`` is 0).
    random_state : None or int

    Attributes
    ----------
    generator_ : the fitted generator
    synthetic_ : SequenceTask of the added patients
    """

    def __init__(
        self,
        *,
        generator=None,
        sensitive: Sequence[str],
        synth_per_group: GroupAmounts = "fill",
        min_group_patients: int = 10,
        fairness_lambda: float = 0.0,
        objective: str = "disparate_impact",
        random_state=None,
    ) -> None:
        self.generator = generator
        self.sensitive = sensitive
        self.synth_per_group = synth_per_group
        self.min_group_patients = min_group_patients
        self.fairness_lambda = fairness_lambda
        self.objective = objective
        self.random_state = random_state

    def fit_augment(self, task: SequenceTask) -> SequenceTask:
        groups = _check_task(task, self.sensitive)
        rng = as_numpy_rng(self.random_state)
        amounts = resolve_group_amounts(
            groups.value_counts().sort_index(),
            self.synth_per_group,
            min_count=self.min_group_patients,
        )
        template = self.generator if self.generator is not None else default_generator()
        gen = configure(
            template,
            fairness=self.objective if self.fairness_lambda else None,
            fairness_lambda=float(self.fairness_lambda),
            sensitive=tuple(self.sensitive),
            random_state=seed_from_rng(rng),
        )
        gen.fit(task)
        synth = generate_for_groups(gen, task, self.sensitive, amounts, rng)
        self.generator_, self.synthetic_ = gen, synth
        return task.subset(np.arange(task.n_patients)).concat(synth)


class EmpiricalEHRGenerator(BaseEstimator):
    """A test double of the EHR generator: copies real patients (not a method).

    Fast stand-in for :class:`~equisynth.generators.ehr.HALOGenerator` in tests and quick
    runs (CLI ``--generator empirical``). For each condition row it draws a label, from the
    condition's ``label`` column when given, otherwise from the group's real positive share
    pulled toward the overall share by ``fairness_lambda``:
    ``p = (p_group + lambda * p_all) / (1 + lambda)`` (so ``lambda`` does what the fairness
    term aims at), and copies the visits of a random real patient of that group and label.

    Parameters
    ----------
    fairness, fairness_lambda, sensitive, random_state
        As :class:`~equisynth.generators.ehr.HALOGenerator` (``fairness`` is not used).
    """

    def __init__(
        self,
        *,
        fairness=None,
        fairness_lambda: float = 0.0,
        sensitive: Sequence[str] = (),
        random_state=None,
    ) -> None:
        self.fairness = fairness
        self.fairness_lambda = fairness_lambda
        self.sensitive = sensitive
        self.random_state = random_state

    def fit(self, task: SequenceTask) -> EmpiricalEHRGenerator:
        if not isinstance(task, SequenceTask):
            raise DataError(f"expected a SequenceTask, got {type(task).__name__}")
        self.task_ = task
        cols = list(self.sensitive) or list(task.demographics.columns)
        self.columns_ = cols
        self.rng_ = as_numpy_rng(self.random_state)
        return self

    def sample(self, n=None, *, conditions: pd.DataFrame | None = None, random_state=None):
        task = self.task_
        rng = as_numpy_rng(random_state) if random_state is not None else self.rng_
        if conditions is None:
            conditions = task.demographics.iloc[rng.integers(0, task.n_patients, int(n))]
        conditions = conditions.reset_index(drop=True)
        key = task.demographics[self.columns_].astype(str).agg("|".join, axis=1).to_numpy()
        wanted = conditions[self.columns_].astype(str).agg("|".join, axis=1).to_numpy()
        lam = float(self.fairness_lambda)
        p_all = float(task.label.mean())
        picks, labels = [], []
        for i, k in enumerate(wanted):
            pool = np.flatnonzero(key == k)
            pool = pool if len(pool) else np.arange(task.n_patients)
            if "label" in conditions.columns:
                y = int(conditions["label"].iloc[i])
            else:
                p = (float(task.label[pool].mean()) + lam * p_all) / (1.0 + lam)
                y = int(rng.random() < p)
            cell = pool[task.label[pool] == y]
            picks.append(int(rng.choice(cell if len(cell) else pool)))
            labels.append(y)
        idx = np.asarray(picks, dtype=np.int64)
        demo = task.demographics.iloc[idx].reset_index(drop=True)
        for col in conditions.columns:
            if col in demo.columns:
                demo[col] = conditions[col].astype(str).to_numpy()
        return SequenceTask(
            patient_ids=np.array([f"synth-{i}" for i in range(len(idx))]),
            demographics=demo,
            label=np.asarray(labels, dtype=np.int64),
            visits=[task.visits[i] for i in idx],
            vocab=list(task.vocab),
            task=task.task,
            is_synthetic=np.ones(len(idx), dtype=bool),
        )
