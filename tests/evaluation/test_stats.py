"""Statistics over seeds: intervals, paired tests, the within-noise verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from equisynth.evaluation.stats import describe_difference, paired_differences, summarize
from equisynth.exceptions import ConfigError, DataError


def _results(values: dict[str, np.ndarray], metric: str = "f1", group: str = "all"):
    rows = [
        {"seed": s, "arm": arm, "metric": metric, "group": group, "value": v}
        for arm, vals in values.items()
        for s, v in enumerate(vals)
    ]
    return pd.DataFrame(rows)


def test_summary_matches_scipy_t_interval():
    rng = np.random.default_rng(0)
    vals = rng.normal(0.7, 0.02, 10)
    s = summarize(_results({"a": vals})).iloc[0]
    low, high = st.t.interval(0.95, 9, loc=vals.mean(), scale=st.sem(vals))
    assert s["n"] == 10 and s["mean"] == pytest.approx(vals.mean())
    assert s["sd"] == pytest.approx(vals.std(ddof=1))
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((low, high))


def test_summary_counts_missing_values_and_single_seed():
    res = _results({"a": np.array([0.5, np.nan, 0.7])})
    s = summarize(res).iloc[0]
    assert s["n"] == 2 and s["n_missing"] == 1 and s["mean"] == pytest.approx(0.6)
    one = summarize(_results({"a": np.array([0.5])})).iloc[0]
    assert one["mean"] == 0.5 and np.isnan(one["sd"]) and np.isnan(one["ci_low"])


def test_paired_test_finds_a_real_shift_and_calls_noise_noise():
    rng = np.random.default_rng(1)
    base = rng.normal(0.70, 0.03, 10)  # seed-to-seed spread larger than the effect
    shifted = base + 0.01 + rng.normal(0, 0.002, 10)  # small but consistent: paired test sees it
    noise = base + rng.normal(0, 0.01, 10)  # no effect
    diffs = paired_differences(
        _results({"ref": base, "up": shifted, "same": noise}), reference="ref"
    ).set_index("arm")
    assert diffs.loc["up", "verdict"] == "higher"
    assert diffs.loc["up", "mean_diff"] == pytest.approx(np.mean(shifted - base))
    assert diffs.loc["up", "p_value"] == pytest.approx(st.ttest_rel(shifted, base).pvalue)
    assert diffs.loc["up", "ci_low"] > 0
    assert diffs.loc["same", "verdict"] == "within noise"
    assert diffs.loc["same", "ci_low"] < 0 < diffs.loc["same", "ci_high"]
    # Holm: the smallest of m p-values is multiplied by m
    assert diffs.loc["up", "p_holm"] == pytest.approx(min(1, 2 * diffs.loc["up", "p_value"]))
    # An unpaired comparison of the same numbers would not see the shift.
    assert st.ttest_ind(shifted, base).pvalue > 0.05


def test_paired_differences_edge_cases():
    same = np.array([0.5, 0.6, 0.7])
    d = paired_differences(_results({"r": same, "b": same}), reference="r").iloc[0]
    assert d["verdict"] == "identical" and d["mean_diff"] == 0
    one = paired_differences(
        _results({"r": np.array([0.5]), "b": np.array([0.6])}), reference="r"
    ).iloc[0]
    assert one["verdict"] == "too few seeds"
    assert "too few" in describe_difference(one, reference="r")
    with pytest.raises(ConfigError, match="reference arm 'x'"):
        paired_differences(_results({"r": same}), reference="x")
    with pytest.raises(DataError, match="seed, arm, metric"):
        summarize(pd.DataFrame({"a": [1]}))
