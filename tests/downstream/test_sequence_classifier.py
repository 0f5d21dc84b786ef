"""downstream.sequence: the GRU / transformer classifier over visits of codes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from equisynth.data.tasks import SequenceTask
from equisynth.downstream import SequenceClassifier
from equisynth.exceptions import ConfigError, DataError, NotFittedError

N_CODES = 30
SIGNAL = 7  # the code that makes the label likely


def planted_task(n: int, seed: int, *, demographic_signal: bool = False) -> SequenceTask:
    """Label depends on whether code 7 occurs in any visit (or, optionally, on sex only)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    visits, label = [], []
    for i in range(n):
        patient = [
            np.sort(rng.choice(N_CODES, size=rng.integers(1, 5), replace=False))
            for _ in range(rng.integers(1, 6))
        ]
        if demographic_signal:
            p = 0.8 if sex[i] == "F" else 0.1
        else:
            p = 0.85 if any(SIGNAL in v for v in patient) else 0.1
        visits.append(patient)
        label.append(int(rng.random() < p))
    return SequenceTask(
        patient_ids=np.array([f"p{i}" for i in range(n)]),
        demographics=pd.DataFrame({"sex": sex}),
        label=np.array(label),
        visits=visits,
        vocab=[f"dx:{i}" for i in range(N_CODES)],
        task="planted",
    )


@pytest.fixture(scope="module")
def data():
    return planted_task(400, 0), planted_task(300, 1)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_learns_a_planted_code_signal(data, kind):
    train, test = data
    clf = SequenceClassifier(kind=kind, d_model=16, n_epochs=15, random_state=0).fit(train)
    proba = clf.predict_proba(test)
    assert proba.shape == (test.n_patients, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # Bayes AUROC of this design is about 0.83; chance is 0.5
    assert roc_auc_score(test.label, proba[:, 1]) > 0.72
    assert clf.loss_history_[-1] < clf.loss_history_[0]


def test_demographics_are_an_explicit_input(data):
    train, test = (
        planted_task(400, 2, demographic_signal=True),
        planted_task(300, 3, demographic_signal=True),
    )
    with_demo = SequenceClassifier(d_model=8, n_epochs=10, random_state=0).fit(train)
    without = SequenceClassifier(d_model=8, n_epochs=10, demographics=False, random_state=0)
    without.fit(train)
    assert roc_auc_score(test.label, with_demo.predict_proba(test)[:, 1]) > 0.8
    assert roc_auc_score(test.label, without.predict_proba(test)[:, 1]) < 0.65
    assert without.demographic_levels_ == {}
    assert with_demo.demographic_levels_ == {"sex": ["F", "M"]}


def test_deterministic_with_a_seed(data):
    train, test = data
    params = dict(d_model=8, n_epochs=3, random_state=5)
    a = SequenceClassifier(**params).fit(train).predict_proba(test)
    b = SequenceClassifier(**params).fit(train).predict_proba(test)
    c = SequenceClassifier(**{**params, "random_state": 6}).fit(train).predict_proba(test)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_predict_uses_the_threshold(data):
    train, test = data
    clf = SequenceClassifier(d_model=8, n_epochs=3, threshold=0.3, random_state=0).fit(train)
    np.testing.assert_array_equal(
        clf.predict(test), (clf.predict_proba(test)[:, 1] >= 0.3).astype(int)
    )


def test_only_the_last_visits_are_read():
    task = planted_task(50, 4)
    long = SequenceTask(
        patient_ids=task.patient_ids,
        demographics=task.demographics,
        label=task.label,
        visits=[[np.array([0])] * 5 + p for p in task.visits],
        vocab=task.vocab,
    )
    clf = SequenceClassifier(d_model=8, n_epochs=2, max_visits=5, random_state=0).fit(task)
    trimmed = SequenceTask(
        patient_ids=task.patient_ids,
        demographics=task.demographics,
        label=task.label,
        visits=[p[-5:] for p in long.visits],
        vocab=task.vocab,
    )
    np.testing.assert_allclose(clf.predict_proba(long), clf.predict_proba(trimmed))


def test_bad_inputs_raise_clear_errors(data):
    train, test = data
    with pytest.raises(DataError, match="SequenceTask"):
        SequenceClassifier().fit(pd.DataFrame({"a": [1]}))
    one_class = train.subset(np.flatnonzero(train.label == 0))
    with pytest.raises(DataError, match="both label classes"):
        SequenceClassifier(n_epochs=1).fit(one_class)
    with pytest.raises(ConfigError, match="kind"):
        SequenceClassifier(kind="lstm").fit(train)
    with pytest.raises(ConfigError, match="n_heads"):
        SequenceClassifier(kind="transformer", d_model=10, n_heads=4).fit(train)
    with pytest.raises(ConfigError, match="n_epochs"):
        SequenceClassifier(n_epochs=0).fit(train)
    with pytest.raises(ConfigError, match="pos_weight"):
        SequenceClassifier(pos_weight="auto").fit(train)
    with pytest.raises(DataError, match="age"):
        SequenceClassifier(demographics=["age"]).fit(train)
    with pytest.raises(NotFittedError):
        SequenceClassifier().predict_proba(test)
    clf = SequenceClassifier(d_model=8, n_epochs=1, random_state=0).fit(train)
    other_vocab = SequenceTask(
        patient_ids=test.patient_ids,
        demographics=test.demographics,
        label=test.label,
        visits=test.visits,
        vocab=[*test.vocab, "dx:extra"],
    )
    with pytest.raises(DataError, match="vocabulary"):
        clf.predict_proba(other_vocab)
    no_sex = SequenceTask(
        patient_ids=test.patient_ids,
        demographics=pd.DataFrame({"race": ["a"] * test.n_patients}),
        label=test.label,
        visits=test.visits,
        vocab=test.vocab,
    )
    with pytest.raises(DataError, match="sex"):
        clf.predict_proba(no_sex)
