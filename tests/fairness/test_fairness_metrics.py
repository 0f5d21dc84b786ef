"""Fairness and performance metrics: hand-computed values, agreement with fairlearn / sklearn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as flm
from sklearn import metrics as skm

from equisynth.exceptions import ConfigError, DataError
from equisynth.fairness import (
    classification_metrics,
    demographic_parity_difference,
    disparate_impact,
    equalized_odds_difference,
    fairness_metrics,
    group_labels,
    group_metrics,
    score_predictions,
    worst_group_tpr,
)

# A tiny table whose group rates are easy to compute by hand.
#            group a (4 rows)  | group b (6 rows)
Y_TRUE = np.array([1, 1, 0, 0, 1, 1, 1, 0, 0, 0])
Y_PRED = np.array([1, 0, 0, 1, 1, 1, 1, 1, 0, 0])
GROUP = pd.Series(["a"] * 4 + ["b"] * 6, name="g")
# a: TP=1 FN=1 FP=1 TN=1 -> TPR 1/2, FPR 1/2, precision 1/2, selection 2/4, accuracy 2/4
# b: TP=3 FN=0 FP=1 TN=2 -> TPR 1, FPR 1/3, precision 3/4, selection 4/6, accuracy 5/6


def test_group_rates_match_hand_computed_values():
    g = group_metrics(Y_TRUE, Y_PRED, sensitive_features=GROUP, min_group_size=1)
    assert list(g.index) == ["g=a", "g=b"]
    a, b = g.loc["g=a"], g.loc["g=b"]
    assert (a["n"], a["n_positive"], a["n_negative"]) == (4, 2, 2)
    assert a["tpr"] == 0.5 and a["fpr"] == 0.5 and a["precision"] == 0.5
    assert a["selection_rate"] == 0.5 and a["accuracy"] == 0.5 and a["f1"] == 0.5
    assert b["tpr"] == 1.0 and b["fpr"] == pytest.approx(1 / 3)
    assert b["precision"] == 0.75 and b["selection_rate"] == pytest.approx(4 / 6)
    assert b["accuracy"] == pytest.approx(5 / 6) and b["f1"] == pytest.approx(6 / 7)
    assert (g["status"] == "ok").all()


def test_disparity_metrics_match_hand_computed_values():
    kw = {"sensitive_features": GROUP}
    assert disparate_impact(Y_TRUE, Y_PRED, **kw) == pytest.approx(0.5 / (4 / 6))
    assert demographic_parity_difference(Y_TRUE, Y_PRED, **kw) == pytest.approx(4 / 6 - 0.5)
    # worst-group TPR is the minimum (0.5), not the mean over groups (0.75)
    assert worst_group_tpr(Y_TRUE, Y_PRED, **kw) == 0.5
    # TPR gap 0.5, FPR gap 1/2 - 1/3: the larger one
    assert equalized_odds_difference(Y_TRUE, Y_PRED, **kw) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agree_with_fairlearn_and_sklearn_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n = 600
    sf = pd.DataFrame({"race": rng.choice(["x", "y", "z"], n), "sex": rng.choice(["F", "M"], n)})
    y_true = rng.integers(0, 2, n)
    y_score = np.clip(0.3 * y_true + rng.random(n) * 0.7, 0, 1)
    y_pred = (y_score > 0.5).astype(int)
    kw = {"sensitive_features": sf}
    assert equalized_odds_difference(y_true, y_pred, **kw) == pytest.approx(
        flm.equalized_odds_difference(y_true, y_pred, **kw)
    )
    assert demographic_parity_difference(y_true, y_pred, **kw) == pytest.approx(
        flm.demographic_parity_difference(y_true, y_pred, **kw)
    )
    assert disparate_impact(y_true, y_pred, **kw) == pytest.approx(
        flm.demographic_parity_ratio(y_true, y_pred, **kw)
    )
    frame = flm.MetricFrame(
        metrics=flm.true_positive_rate, y_true=y_true, y_pred=y_pred, sensitive_features=sf
    )
    assert worst_group_tpr(y_true, y_pred, **kw) == pytest.approx(frame.group_min())
    g = group_metrics(y_true, y_pred, **kw)
    assert len(g) == 6 and g.index[0] == "race=x & sex=F"  # intersections of two attributes
    m = classification_metrics(y_true, y_pred, y_score)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y_true, y_pred))
    assert m["auroc"] == pytest.approx(skm.roc_auc_score(y_true, y_score))
    assert m["auprc"] == pytest.approx(skm.average_precision_score(y_true, y_score))


def test_auroc_uses_probabilities_and_positive_class_is_configurable():
    y = np.array(["in", "out", "in", "out", "in", "out"])
    pred = np.array(["in", "out", "out", "out", "in", "out"])
    p_in = np.array([0.9, 0.2, 0.45, 0.3, 0.8, 0.4])
    m_in = classification_metrics(y, pred, p_in, pos_label="in")
    m_out = classification_metrics(y, pred, 1 - p_in, pos_label="out")
    assert m_in["auroc"] == 1.0  # perfect ranking although a hard label is wrong
    assert m_in["auroc"] != m_in["balanced_accuracy"]
    assert m_in["f1"] == pytest.approx(skm.f1_score(y, pred, pos_label="in"))
    assert m_out["f1"] == pytest.approx(skm.f1_score(y, pred, pos_label="out"))
    assert m_in["f1"] != m_out["f1"]
    assert np.isnan(classification_metrics(y, pred, pos_label="in")["auroc"])  # never from labels


def test_small_groups_are_reported_not_dropped():
    # group c has 3 rows (1 positive): too small for every rate at min_group_size=4
    y_true = np.r_[Y_TRUE, Y_TRUE, [1, 0, 0]]
    y_pred = np.r_[Y_PRED, Y_PRED, [0, 0, 0]]
    sf = pd.Series([*GROUP, *GROUP, "c", "c", "c"], name="g")
    g = group_metrics(y_true, y_pred, sensitive_features=sf, min_group_size=4)
    assert "g=c" in g.index and g.loc["g=c", "n"] == 3
    assert np.isnan(g.loc["g=c", "tpr"]) and "too small" in g.loc["g=c", "status"]
    assert "tpr (n_positive=1)" in g.loc["g=c", "status"]
    # c's TPR of 0 would be the worst: it is excluded, and the exclusion is counted
    summary = fairness_metrics(g)
    assert summary["worst_group_tpr"] == 0.5
    assert summary["n_groups"] == 3 and summary["n_groups_too_small"] == 1
    rows = score_predictions(y_true, y_pred, sensitive_features=sf, min_group_size=4)
    c_rows = rows[rows["group"] == "g=c"].set_index("metric")["value"]
    assert c_rows["n"] == 3 and np.isnan(c_rows["tpr"])
    # the plain function with the default threshold keeps it: min TPR is 0
    assert worst_group_tpr(y_true, y_pred, sensitive_features=sf) == 0.0


def test_score_predictions_tidy_layout():
    rows = score_predictions(
        Y_TRUE, Y_PRED, np.linspace(0, 1, 10), sensitive_features=GROUP, min_group_size=1
    )
    assert list(rows.columns) == ["metric", "group", "value"]
    overall = rows[rows["group"] == "all"].set_index("metric")["value"]
    for m in ("accuracy", "f1", "auroc", "auprc", "disparate_impact", "worst_group_tpr"):
        assert m in overall.index
    assert overall["worst_group_tpr"] == 0.5
    assert set(rows["group"]) == {"all", "g=a", "g=b"}


def test_sensitive_feature_formats_and_labels():
    arr = np.array([["a", "F"], ["b", "M"]], dtype=object)
    assert group_labels(arr).tolist() == [
        "sensitive_feature_0=a & sensitive_feature_1=F",
        "sensitive_feature_0=b & sensitive_feature_1=M",
    ]
    assert group_labels({"s": ["x", "y"]}).tolist() == ["s=x", "s=y"]
    g1 = group_metrics(Y_TRUE, Y_PRED, sensitive_features=GROUP.to_numpy(), min_group_size=1)
    g2 = group_metrics(Y_TRUE, Y_PRED, sensitive_features=GROUP, min_group_size=1)
    np.testing.assert_allclose(g1["tpr"].to_numpy(), g2["tpr"].to_numpy())


def test_bad_inputs_name_the_problem():
    with pytest.raises(DataError, match="sensitive_features has 3 rows but y_true has 10"):
        group_metrics(Y_TRUE, Y_PRED, sensitive_features=["a", "b", "c"])
    with pytest.raises(DataError, match="missing values"):
        group_metrics(Y_TRUE, Y_PRED, sensitive_features=pd.Series([None] * 10, name="s"))
    with pytest.raises(DataError, match="binary"):
        classification_metrics([0, 1, 2], [0, 1, 1])
    with pytest.raises(DataError, match="pos_label 'yes'"):
        classification_metrics([0, 1], [0, 1], pos_label="yes")
    with pytest.raises(DataError, match="y_score"):
        classification_metrics([0, 1], [0, 1], [0.5])
    with pytest.raises(ConfigError, match="min_group_size"):
        group_metrics(Y_TRUE, Y_PRED, sensitive_features=GROUP, min_group_size=0)
