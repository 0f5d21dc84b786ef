"""Privacy metrics flag copies and pass fresh samples from the same distribution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from equisynth.evaluation.quality import drop_close_copies, privacy_report
from equisynth.exceptions import ConfigError, DataError

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="module")
def splits():
    if not DATA.is_dir():
        pytest.skip("shared data folder absent")
    df = pd.read_csv(DATA / "patient_treatment" / "patient_treatment.csv")
    perm = np.random.default_rng(0).permutation(len(df))
    return df.iloc[perm[:1000]], df.iloc[perm[1000:2000]], df.iloc[perm[2000:3000]]


def _metrics(train, synth, holdout):
    rep = privacy_report(train, synth, holdout, random_state=0)
    assert list(rep.columns) == ["metric", "stratum", "column", "value"]
    return rep.set_index("metric")["value"]


def test_fresh_sample_looks_like_holdout(splits):
    train, fresh, holdout = splits
    m = _metrics(train, fresh, holdout)
    assert 0.8 < m["dcr_ratio"] < 1.25
    assert m["exact_copy_rate"] == 0.0
    assert abs(m["mia_auc"] - 0.5) < 0.07
    assert abs(m["nndr_synth_median"] - m["nndr_holdout_median"]) < 0.1


def test_copies_are_flagged(splits):
    train, _, holdout = splits
    m = _metrics(train, train, holdout)
    assert m["dcr_ratio"] == 0.0
    assert m["exact_copy_rate"] == 1.0
    assert m["mia_auc"] > 0.95
    # slightly jittered copies: not exact, but far closer than fresh patients
    jitter = train.assign(AGE=train["AGE"] + 0.01)
    m = _metrics(train, jitter, holdout)
    assert m["exact_copy_rate"] == 0.0 and m["dcr_ratio"] < 0.1 and m["mia_auc"] > 0.9
    assert m["share_synth_closer_than_holdout_p05"] > 0.9


def test_drop_close_copies(splits):
    train, fresh, _ = splits
    synth = pd.concat([fresh.iloc[:100], train.iloc[:30]])
    kept, dropped = drop_close_copies(synth, train)
    assert dropped.tolist() == [False] * 100 + [True] * 30
    assert kept.index.equals(fresh.index[:100])
    kept_far, dropped_far = drop_close_copies(synth, train, threshold=1e6)
    assert kept_far.empty and dropped_far.all()
    with pytest.raises(ConfigError, match="threshold"):
        drop_close_copies(synth, train, threshold=-1.0)


def test_privacy_errors_name_the_column(splits):
    train, fresh, holdout = splits
    with pytest.raises(DataError, match="AGE"):
        privacy_report(train, fresh.drop(columns="AGE"), holdout)
    with pytest.raises(DataError, match="held-out"):
        privacy_report(train, fresh, holdout.drop(columns="SEX"))


def test_mia_matched_by_stratum_ignores_a_different_group_mix(splits):
    """Training rows mostly male, held-out rows mostly female, fresh synthetic rows female (a
    rebalancing experiment): an unmatched attack scores the group mix (AUC far from 0.5); the
    attack matched by SEX sees no membership signal in fresh samples."""
    train, fresh, holdout = splits
    men, women = train[train["SEX"] == "M"], train[train["SEX"] == "F"]
    train_mix = pd.concat([men, women.iloc[: len(women) // 10]])
    holdout_mix = pd.concat([holdout[holdout["SEX"] == "F"], holdout[holdout["SEX"] == "M"][:50]])
    synth = fresh[fresh["SEX"] == "F"]
    plain = privacy_report(train_mix, synth, holdout_mix, random_state=0)
    matched = privacy_report(train_mix, synth, holdout_mix, strata=["SEX"], random_state=0)
    plain, matched = (r.set_index("metric")["value"] for r in (plain, matched))
    assert plain["mia_auc"] < 0.4
    assert abs(matched["mia_auc"] - 0.5) < 0.1
    n_women = len(women) // 10
    assert matched["mia_pairs"] == min(n_women, (holdout["SEX"] == "F").sum()) + 50
