"""resampling.fairsynth: the feedback loop (history, selection, output, determinism).

The loop runs the real HALO generator with tiny settings; a recording test double checks which
generators are (re)trained.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from equisynth.data.tasks import SequenceTask
from equisynth.downstream import SequenceClassifier
from equisynth.exceptions import ConfigError
from equisynth.resampling.ehr_baselines import EmpiricalEHRGenerator
from equisynth.resampling.fairsynth import FairSynth

FITS: list[dict] = []


class SpyGenerator(EmpiricalEHRGenerator):
    """The empirical double with a warm-start ``init`` argument that records every fit."""

    def fit(self, task, init=None):
        FITS.append({"lambda": self.fairness_lambda, "warm": init is not None})
        return super().fit(task)


def toy_task(n: int = 360, seed: int = 0) -> SequenceTask:
    """Groups a / b / c (70 / 20 / 10 %) with different positive rates; code 3 is predictive."""
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], size=n, p=[0.6, 0.25, 0.15])
    visits, label = [], []
    for i in range(n):
        patient = [
            np.sort(rng.choice(12, size=rng.integers(1, 4), replace=False))
            for _ in range(rng.integers(1, 4))
        ]
        base = {"a": 0.35, "b": 0.1, "c": 0.15}[g[i]]
        label.append(int(rng.random() < (0.8 if any(3 in v for v in patient) else base)))
        visits.append(patient)
    return SequenceTask(
        patient_ids=np.array([f"p{i}" for i in range(n)]),
        demographics=pd.DataFrame({"grp": g, "sex": rng.choice(["F", "M"], n)}),
        label=np.array(label),
        visits=visits,
        vocab=[f"dx:{i}" for i in range(12)],
        task="toy",
    )


def tiny_halo():
    from equisynth.generators.ehr import HALOGenerator

    return HALOGenerator(n_layers=1, d_model=16, n_heads=2, n_code_layers=1, n_epochs=2)


def loop(**kw) -> FairSynth:
    params = dict(
        generator=tiny_halo(),
        sensitive=["grp"],
        n_rounds=3,
        downstream=SequenceClassifier(d_model=8, n_epochs=4),
        min_group_size=3,
        random_state=0,
    )
    return FairSynth(**{**params, **kw})


@pytest.fixture(scope="module")
def task():
    return toy_task()


@pytest.fixture(scope="module")
def fitted(task):
    fs = loop()
    return fs, fs.fit_augment(task)


def test_history_has_one_row_per_round(fitted):
    fs, _ = fitted
    h = fs.history_
    assert h["round"].tolist() == [0, 1, 2]
    for col in ("lambda", "n_synthetic", "n_synth[grp=b]", "val_auroc", "val_objective",
                "val_disparate_impact", "val_worst_group_tpr", "eligible", "worst_group"):  # fmt: skip
        assert col in h.columns
    assert (h["n_synthetic"] == h.filter(like="n_synth[").sum(axis=1)).all()


def test_best_round_is_the_best_eligible_validation_objective(fitted):
    fs, _ = fitted
    h = fs.history_
    eligible = h[h["eligible"]]
    if len(eligible):
        obj = eligible["val_objective"].fillna(-np.inf)
        best = eligible[obj == obj.max()]
        best = best[best["val_auroc"] == best["val_auroc"].max()]
        assert fs.best_round_ == int(best["round"].min())
    else:
        assert fs.best_round_ == int(h["val_auroc"].idxmax())
    assert fs.synthetic_.n_patients == h.loc[fs.best_round_, "n_synthetic"]
    assert set(fs.floors_) == {"auroc", "balanced_accuracy"}


def test_result_holds_every_real_patient_unchanged_then_synthetic(task, fitted):
    fs, out = fitted
    n = task.n_patients
    np.testing.assert_array_equal(out.patient_ids[:n], task.patient_ids)
    np.testing.assert_array_equal(out.label[:n], task.label)
    pd.testing.assert_frame_equal(out.demographics.iloc[:n], task.demographics)
    assert all(
        [v.tolist() for v in a] == [v.tolist() for v in b]
        for a, b in zip(out.visits[:n], task.visits, strict=True)
    )
    assert not out.is_synthetic[:n].any() and out.is_synthetic[n:].all()
    assert out.n_patients == n + fs.synthetic_.n_patients
    np.testing.assert_array_equal(fs.synthetic_mask_, out.is_synthetic)
    # the validation patients were real training patients, and they are given back
    assert set(fs.validation_ids_) <= set(task.patient_ids)
    assert 0.15 * n < len(fs.validation_ids_) < 0.25 * n


def test_deterministic_with_a_seed(task, fitted):
    fs, out = fitted
    again = loop()
    out2 = again.fit_augment(task)
    cols = [c for c in fs.history_.columns if c != "seconds"]
    pd.testing.assert_frame_equal(fs.history_[cols], again.history_[cols])
    np.testing.assert_array_equal(out.label, out2.label)
    pd.testing.assert_frame_equal(out.demographics, out2.demographics)


def _key(row) -> tuple:
    obj = -np.inf if np.isnan(row["val_objective"]) else row["val_objective"]
    auc = -np.inf if np.isnan(row["val_auroc"]) else row["val_auroc"]
    return (True, obj, auc) if row["eligible"] else (False, auc, obj)


def test_adaptive_rule_and_amounts(task, fitted):
    fs, _ = fitted
    h = fs.history_
    step = int(np.ceil(0.25 * task.groups(["grp"]).value_counts().max()))
    best = 0
    assert h.loc[0, "lambda"] == 1.0
    for r in (1, 2):
        prev = h.loc[r - 1]
        if r - 1 == 0 or _key(prev) > _key(h.loc[best]):
            best = r - 1
            expected = 2.0 * prev["lambda"]  # improved: lambda * lambda_factor
        else:
            expected = 0.5 * (prev["lambda"] + h.loc[best, "lambda"])  # half way back
        assert h.loc[r, "lambda"] == pytest.approx(expected)
        worst = prev["worst_group"]
        for g in ("grp=a", "grp=b", "grp=c"):
            grow = step if g == worst else 0
            assert h.loc[r, f"n_synth[{g}]"] == prev[f"n_synth[{g}]"] + grow


def test_lambda_grid_warm_start_and_refits(task):
    FITS.clear()
    fs = loop(generator=SpyGenerator(), lambdas=[0.5, 0.5, 3.0], adapt=("lambda",))
    fs.fit_augment(task)
    assert fs.history_["lambda"].tolist() == [0.5, 0.5, 3.0]
    assert fs.history_["refit"].tolist() == [True, False, True]
    # one lambda = 0 base fit, then a warm-started fine-tune per distinct lambda
    assert FITS == [
        {"lambda": 0.0, "warm": False},
        {"lambda": 0.5, "warm": True},
        {"lambda": 3.0, "warm": True},
    ]
    FITS.clear()
    loop(generator=SpyGenerator(), n_rounds=2, warm_start=False).fit_augment(task)
    assert [f["warm"] for f in FITS] == [False, False]


def test_worst_group_tpr_objective(task):
    fs = loop(objective="worst_group_tpr", n_rounds=2)
    fs.fit_augment(task)
    np.testing.assert_allclose(
        fs.history_["val_objective"], fs.history_["val_worst_group_tpr"], equal_nan=True
    )


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"objective": "accuracy"}, "objective"),
        ({"n_rounds": 0}, "n_rounds"),
        ({"lambdas": [1.0]}, "lambdas"),
        ({"adapt": ("lambda", "seeds")}, "adapt"),
        ({"floor_metrics": ("auroc", "loss")}, "floor_metrics"),
        ({"warm_epochs": 0}, "warm_epochs"),
    ],
)
def test_bad_options(task, params, match):
    with pytest.raises(ConfigError, match=match):
        loop(**params).fit_augment(task)


def test_a_level_seen_only_in_validation_is_never_a_condition():
    """Conditions come from the generator's training part (HALO rejects unseen levels)."""
    from equisynth.resampling.ehr_baselines import stratified_split

    task = toy_task(300, seed=5)
    demo = task.demographics.copy()
    demo.loc[0, "sex"] = "U"  # one patient with a level of its own
    task = SequenceTask(
        patient_ids=task.patient_ids,
        demographics=demo,
        label=task.label,
        visits=task.visits,
        vocab=task.vocab,
        task=task.task,
    )
    seed = next(
        s
        for s in range(50)
        if 0 in stratified_split(task, ["grp"], 0.2, np.random.default_rng(s))[1]
    )
    fs = loop(n_rounds=1, random_state=seed)
    out = fs.fit_augment(task)
    assert "p0" in set(fs.validation_ids_)
    assert "U" not in set(fs.synthetic_.demographics["sex"])
    assert out.n_patients == task.n_patients + fs.synthetic_.n_patients
