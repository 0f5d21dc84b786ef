"""SequenceTask: validation, subset/concat inverses, group labels."""

import numpy as np
import pandas as pd
import pytest

from equisynth.data.tasks import SequenceTask
from equisynth.exceptions import DataError


def _task(n=4):
    return SequenceTask(
        patient_ids=np.array([f"p{i}" for i in range(n)]),
        demographics=pd.DataFrame({"sex": ["F", "M"] * (n // 2), "race": ["a"] * n}),
        label=np.arange(n) % 2,
        visits=[[np.array([i % 3, 2]), np.array([1])] for i in range(n)],
        vocab=["dx:a", "dx:b", "rx:c"],
        task="t",
    )


def test_subset_then_concat_restores_the_task():
    t = _task(6)
    back = t.subset(np.arange(3)).concat(t.subset(np.arange(3, 6)))
    assert back.patient_ids.tolist() == t.patient_ids.tolist()
    assert back.label.tolist() == t.label.tolist()
    assert [[v.tolist() for v in p] for p in back.visits] == [
        [v.tolist() for v in p] for p in t.visits
    ]
    pd.testing.assert_frame_equal(back.demographics, t.demographics)


def test_visits_are_sorted_unique_and_groups_are_intersectional():
    t = SequenceTask(
        ["p"], pd.DataFrame({"s": ["F"], "r": ["b"]}), [1], [[[2, 0, 2]]], ["a", "b", "c"]
    )
    assert t.visits[0][0].tolist() == [0, 2]
    assert t.groups(["s", "r"]).tolist() == ["s=F & r=b"]
    assert t.visit_sets() == [[frozenset({"a", "c"})]]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"visits": [[]]}, "no visit"),
        ({"visits": [[[]]]}, "without codes"),
        ({"visits": [[[5]]]}, "outside the vocabulary"),
        ({"label": [2]}, "0/1"),
        ({"demographics": pd.DataFrame({"s": [None]})}, "missing values"),
        ({"label": [0, 1]}, "must have 1 patients"),
    ],
)
def test_bad_parts_are_refused_with_a_clear_message(change, needle):
    parts = {
        "patient_ids": ["p"],
        "demographics": pd.DataFrame({"s": ["F"]}),
        "label": [1],
        "visits": [[[0]]],
        "vocab": ["a"],
    }
    parts.update(change)
    with pytest.raises(DataError, match=needle):
        SequenceTask(**parts)


def test_groups_name_an_unknown_column():
    with pytest.raises(DataError, match="not among the demographics"):
        _task().groups(["age"])
