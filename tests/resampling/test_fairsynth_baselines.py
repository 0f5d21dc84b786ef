"""resampling.ehr_baselines: group amounts, patient-level splits, DPO, Real+Synth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from equisynth.data.tasks import SequenceTask
from equisynth.exceptions import ConfigError, DataError
from equisynth.resampling.ehr_baselines import (
    DoublePrioritizedOversampler,
    EmpiricalEHRGenerator,
    RealOnly,
    RealSynth,
    double_prioritized_oversample,
    generate_for_groups,
    resolve_group_amounts,
    stratified_split,
)


def hand_task() -> SequenceTask:
    """Groups a (10 patients, 4 positive), b (5, 1), c (2, 0), d (4, 3); one code per patient."""
    groups = ["a"] * 10 + ["b"] * 5 + ["c"] * 2 + ["d"] * 4
    label = [*[1] * 4, *[0] * 6, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0]
    n = len(groups)
    return SequenceTask(
        patient_ids=np.array([f"p{i}" for i in range(n)]),
        demographics=pd.DataFrame({"g": groups, "sex": ["F", "M"] * 10 + ["F"]}),
        label=np.array(label),
        visits=[[np.array([i % 3]), np.array([i % 2])] for i in range(n)],
        vocab=["dx:0", "dx:1", "dx:2"],
        task="hand",
    )


def _cells(task: SequenceTask) -> dict:
    added = task.subset(task.is_synthetic)
    frame = pd.DataFrame({"g": added.demographics["g"], "y": added.label})
    return frame.value_counts().sort_index().to_dict()


def test_dpo_counts_follow_the_documented_rule():
    task = hand_task()
    out = double_prioritized_oversample(task, ["g"], random_state=0)
    # fill: b +5, c +8, d +6; target share = a's 0.4
    # b: ceil(0.4 * 10) - 1 = 3 positives, 2 negatives; c: no positive -> 8 negatives;
    # d: ceil(0.4 * 10) - 3 = 1 positive, 5 negatives
    assert _cells(out) == {("b", 0): 2, ("b", 1): 3, ("c", 0): 8, ("d", 0): 5, ("d", 1): 1}
    groups = out.groups(["g"])
    assert groups.value_counts().to_dict() == {"g=a": 10, "g=b": 10, "g=c": 10, "g=d": 10}
    for g in ("g=b", "g=d"):
        assert out.label[(groups == g).to_numpy()].mean() == pytest.approx(0.4)


def test_dpo_keeps_real_patients_first_and_replicates_evenly():
    task = hand_task()
    out = double_prioritized_oversample(task, ["g"], random_state=1)
    n = task.n_patients
    assert not out.is_synthetic[:n].any() and out.is_synthetic[n:].all()
    np.testing.assert_array_equal(out.patient_ids[:n], task.patient_ids)
    np.testing.assert_array_equal(out.label[:n], task.label)
    # every replica is an exact copy of its source patient, ids "<id>#dup<k>"
    source = {pid: i for i, pid in enumerate(task.patient_ids)}
    copies = pd.Series([pid.split("#dup")[0] for pid in out.patient_ids[n:]])
    for k, pid in enumerate(copies):
        i = source[pid]
        assert out.label[n + k] == task.label[i]
        assert [v.tolist() for v in out.visits[n + k]] == [v.tolist() for v in task.visits[i]]
    # c's two negatives share its 8 replicas evenly (4 each)
    c = copies[copies.isin(["p15", "p16"])].value_counts()
    assert c.tolist() == [4, 4]
    assert len(set(out.patient_ids)) == out.n_patients


def test_dpo_target_share_and_small_groups():
    task = hand_task()
    out = double_prioritized_oversample(task, ["g"], target_share=0.5, min_group_patients=3)
    # c has 2 patients (< 3): nothing; b: ceil(0.5 * 10) - 1 = 4 positives, 1 negative;
    # d: 5 - 3 = 2 positives, 4 negatives
    assert _cells(out) == {("b", 0): 1, ("b", 1): 4, ("d", 0): 4, ("d", 1): 2}
    sampler = DoublePrioritizedOversampler(
        sensitive=["g"], synth_per_group={"g=b": 2}, min_group_patients=1
    )
    out = sampler.fit_augment(task)
    assert _cells(out) == {("b", 1): 2}  # ceil(0.4 * 7) - 1 = 2 positives: the whole budget
    # the default (10 patients at least) leaves the small groups alone
    default = DoublePrioritizedOversampler(sensitive=["g"], synth_per_group={"g=b": 2})
    assert not default.fit_augment(task).is_synthetic.any()
    assert sampler.synthetic_mask_.sum() == 2
    with pytest.raises(ConfigError, match="target_share"):
        double_prioritized_oversample(task, ["g"], target_share=1.5)


def test_group_amount_strategies():
    counts = pd.Series({"a": 10, "b": 5, "c": 2, "d": 4})
    assert resolve_group_amounts(counts, "fill") == {"a": 0, "b": 5, "c": 8, "d": 6}
    assert resolve_group_amounts(counts, 0.5) == {"a": 0, "b": 0, "c": 3, "d": 1}
    # a total is split in proportion to the fill deficits 5 : 8 : 6 (largest remainder)
    assert resolve_group_amounts(counts, 10) == {"a": 0, "b": 3, "c": 4, "d": 3}
    assert sum(resolve_group_amounts(counts, 1000).values()) == 1000
    assert resolve_group_amounts(counts, "fill", min_count=3) == {"a": 0, "b": 5, "c": 0, "d": 6}
    assert resolve_group_amounts(counts, {"c": 3}) == {"a": 0, "b": 0, "c": 3, "d": 0}
    even = pd.Series({"a": 4, "b": 4})
    assert resolve_group_amounts(even, 4) == {"a": 2, "b": 2}  # no deficit: by group size
    with pytest.raises(ConfigError, match="unknown group"):
        resolve_group_amounts(counts, {"z": 1})
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        resolve_group_amounts(counts, 1.5)
    with pytest.raises(ConfigError):
        resolve_group_amounts(counts, "double")


def test_stratified_split_is_patient_level_and_stratified():
    rng = np.random.default_rng(0)
    n = 400
    groups = rng.choice(["a", "b", "c"], n, p=[0.7, 0.2, 0.1])
    label = (rng.random(n) < np.where(groups == "a", 0.3, 0.1)).astype(int)
    task = SequenceTask(
        patient_ids=np.arange(n).astype(str),
        demographics=pd.DataFrame({"g": groups}),
        label=label,
        visits=[[np.array([0])]] * n,
        vocab=["dx:0"],
    )
    train, test = stratified_split(task, ["g"], 0.25, random_state=3)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == n
    assert len(test) == 100
    for g in ("a", "b", "c"):
        for y in (0, 1):
            cell = np.flatnonzero((groups == g) & (label == y))
            assert abs(np.isin(cell, test).sum() - 0.25 * len(cell)) <= 1
    again = stratified_split(task, ["g"], 0.25, random_state=3)
    np.testing.assert_array_equal(train, again[0])
    # a lone patient of a stratum does not break the split
    stratified_split(hand_task(), ["g"], 0.3, random_state=0)
    with pytest.raises(DataError, match="race"):
        stratified_split(task, ["race"], 0.25)


def test_generate_for_groups_conditions_on_the_group():
    task = hand_task()
    gen = EmpiricalEHRGenerator(sensitive=["g"], random_state=0).fit(task)
    synth = generate_for_groups(gen, task, ["g"], {"g=b": 3, "g=d": 2}, random_state=0)
    assert synth.demographics["g"].tolist() == ["b", "b", "b", "d", "d"]
    assert synth.is_synthetic.all() and list(synth.vocab) == list(task.vocab)
    assert list(synth.demographics.columns) == ["g", "sex"]
    empty = generate_for_groups(gen, task, ["g"], {"g=b": 0}, random_state=0)
    assert empty.n_patients == 0


def test_real_only_and_real_synth():
    task = hand_task()
    assert RealOnly().fit_augment(task).n_patients == task.n_patients
    arm = RealSynth(generator=EmpiricalEHRGenerator(), sensitive=["g"], min_group_patients=1)
    out = arm.fit_augment(task)
    assert out.is_synthetic.sum() == 5 + 8 + 6
    assert arm.generator_.fairness_lambda == 0.0
    np.testing.assert_array_equal(out.patient_ids[: task.n_patients], task.patient_ids)
