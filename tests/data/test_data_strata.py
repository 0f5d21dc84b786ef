"""StrataIndex (phi bijection), counts and the sampling strategies."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from equisynth.data.strata import StrataIndex, resolve_sampling_strategy
from equisynth.exceptions import StrataError

label = st.one_of(st.integers(-5, 5), st.sampled_from(["a", "b", "zz"]), st.booleans())


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(label, min_size=1, max_size=6, unique=True), min_size=1, max_size=4),
    st.integers(0, 2**31),
)
def test_phi_bijection(level_lists, seed):
    rng = np.random.default_rng(seed)
    n = 30
    cols = {
        f"c{j}": [lv[i % len(lv)] for i in rng.permutation(max(n, len(lv)))]
        for j, lv in enumerate(level_lists)
    }
    m = max(len(v) for v in cols.values())
    df = pd.DataFrame({k: (v * m)[:m] for k, v in cols.items()}, dtype=object)
    idx = StrataIndex(list(df.columns)).fit(df)
    assert idx.n_strata_ == int(np.prod([df[c].nunique() for c in df.columns]))
    all_ids = np.arange(idx.n_strata_)
    decoded = idx.decode(all_ids)
    np.testing.assert_array_equal(idx.encode(decoded), all_ids)
    ids = idx.encode(df)
    back = idx.decode(ids)
    assert back.astype(str).equals(df.astype(str).reset_index(drop=True))
    idx2 = StrataIndex.from_state(json.loads(json.dumps(idx.get_state())))
    np.testing.assert_array_equal(idx2.encode(df), ids)


def _table():
    # y x sex: (0,F)=40 (0,M)=20 (1,F)=10 (1,M)=30 -> group F=50 (P(y=1)=0.2), M=50... make unequal
    rows = [(0, "F")] * 60 + [(0, "M")] * 20 + [(1, "F")] * 20 + [(1, "M")] * 30
    return pd.DataFrame(rows, columns=["y", "sex"])


def test_counts_describe_and_auto():
    df = _table()
    idx = StrataIndex(["y", "sex"]).fit(df)
    counts = idx.counts(df)
    assert counts.tolist() == [60, 20, 20, 30]
    d = idx.describe(df)
    assert d["share"].sum() == pytest.approx(1.0) and d["observed"].all()
    res = resolve_sampling_strategy("auto", counts, idx, target="y", sensitive=["sex"])
    assert res == {0: 0, 1: 40, 2: 40, 3: 30}
    assert resolve_sampling_strategy(0.5, counts, idx, target="y", sensitive=["sex"]) == {
        0: 0,
        1: 10,
        2: 10,
        3: 0,
    }


def test_equalize_groups_keeps_prevalence():
    df = _table()  # F: 80 rows, P(y=1)=0.25; M: 50 rows, P(y=1)=0.6
    idx = StrataIndex(["y", "sex"]).fit(df)
    counts = idx.counts(df)
    res = resolve_sampling_strategy("equalize-groups", counts, idx, target="y", sensitive=["sex"])
    final = counts + pd.Series(res)
    assert res[0] == 0 and res[2] == 0
    assert final[1] + final[3] == 80  # M reaches the F size
    assert final[3] / 80 == pytest.approx(0.6)


def test_dict_callable_and_errors():
    df = _table()
    idx = StrataIndex(["y", "sex"]).fit(df)
    c = idx.counts(df)
    kw = {"target": "y", "sensitive": ["sex"]}
    assert resolve_sampling_strategy({(1, "F"): 25, 1: 20}, c, idx, **kw) == {2: 5, 1: 0}
    assert resolve_sampling_strategy(lambda d: {(1, "M"): 31}, c, idx, **kw) == {3: 1}
    with pytest.raises(StrataError, match="already has 60"):
        resolve_sampling_strategy({(0, "F"): 5}, c, idx, **kw)
    with pytest.raises(StrataError, match="equalize-groups"):
        resolve_sampling_strategy("nonsense", c, idx, **kw)
    with pytest.raises(StrataError, match=r"'sex'.*'X'"):
        idx.encode(pd.DataFrame({"y": [0], "sex": ["X"]}))
    with pytest.raises(StrataError, match="'sex' has 1 missing"):
        StrataIndex(["y", "sex"]).fit(pd.DataFrame({"y": [0, 1], "sex": ["F", None]}))
    one = pd.DataFrame({"y": [0, 0], "sex": ["F", "F"]})
    i1 = StrataIndex(["y", "sex"]).fit(one)
    with pytest.raises(StrataError, match="single stratum"):
        resolve_sampling_strategy("auto", i1.counts(one), i1, **kw)


def test_empty_and_small_strata_reported():
    df = pd.DataFrame({"y": [0] * 20 + [1] * 5 + [0] * 12, "sex": ["F"] * 25 + ["M"] * 12})
    idx = StrataIndex(["y", "sex"]).fit(df)
    with pytest.warns(UserWarning, match=r"\(y=1, sex='F'\) has only 5 rows") as record:
        res = resolve_sampling_strategy("auto", idx.counts(df), idx, target="y", sensitive=["sex"])
    assert 3 not in res and res == {0: 0, 1: 8, 2: 15}
    empty = [str(w.message) for w in record if "no rows" in str(w.message)]
    assert empty == [
        "1 stratum/strata with no rows skipped (nothing to learn from, nothing added): "
        "(y=1, sex='M')"
    ]
    # the 12-row stratum (0, M) is above the default min_rows=10: one warning only
    assert len([w for w in record if "has only" in str(w.message)]) == 1
    with pytest.warns(UserWarning, match=r"sex='M'\) has only 12 rows \(fewer than 13\)"):
        resolve_sampling_strategy(
            "auto", idx.counts(df), idx, target="y", sensitive=["sex"], min_rows=13
        )
