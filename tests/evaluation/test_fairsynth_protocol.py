"""evaluation.protocols.fairsynth: arms, grids, scoring on real test patients, outputs.

On a stratified subsample of the Synthea sample export (real loader, real HALO generator with
tiny settings), so that each test takes a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from equisynth.evaluation.protocols._scoring import RESULT_COLUMNS
from equisynth.exceptions import ConfigError, DataError

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SYNTHEA = DATA / "synthea_1k"
TINY_HALO = {"n_layers": 1, "d_model": 16, "n_heads": 2, "n_code_layers": 1, "n_epochs": 1}
TINY_DOWN = {"d_model": 8, "n_epochs": 2}


@pytest.fixture(scope="module")
def task():
    if not SYNTHEA.is_dir():
        pytest.skip("shared data folder absent")
    from equisynth.data.loaders import load_synthea
    from equisynth.data.tasks import make_task
    from equisynth.resampling.ehr_baselines import stratified_split

    full = make_task(load_synthea(SYNTHEA), "mortality_next_visit", demographics=["gender", "race"])
    keep, _ = stratified_split(full, ["race"], 0.7, random_state=0)  # 30%: ~350 patients
    return full.subset(keep)


def protocol(task, **kw):
    from equisynth.evaluation.protocols.fairsynth import FairSynthProtocol

    params = dict(
        task=task,
        sensitive=["race"],
        synth_per_group=40,
        generator_params=TINY_HALO,
        downstream_params=TINY_DOWN,
        fairsynth_params={"n_rounds": 2},
        min_group_size=5,
    )
    return FairSynthProtocol(**{**params, **kw})


@pytest.fixture(scope="module")
def experiment(task):
    from equisynth.evaluation.runner import run_experiment

    p = protocol(task)
    return p, run_experiment(p, seeds=2)


def test_every_arm_is_scored_on_real_test_patients_only(task, experiment):
    _, result = experiment
    res = result.results
    assert list(res.columns) == RESULT_COLUMNS
    assert list(dict.fromkeys(res["arm"])) == [
        "real",
        "real_synth",
        "real_oversample",
        "real_fairsynth",
    ]
    overall = res[res["group"] == "all"].set_index(["seed", "arm", "metric"])["value"]
    for metric in ("disparate_impact", "worst_group_tpr", "f1", "auroc", "auprc"):
        assert (0, "real_fairsynth", metric) in overall.index
    test = result.test
    n_test = test.n_patients
    assert not test.is_synthetic.any()
    # the per-group counts of every arm add up to the real test set (no synthetic patient)
    n_rows = res[(res["metric"] == "n") & (res["group"] != "all")]
    assert (n_rows.groupby(["seed", "arm"])["value"].sum() == n_test).all()
    assert set(n_rows["group"]) <= set(task.groups(["race"]))
    # training sets: the same real patients in every arm, disjoint from the test patients
    real_ids = None
    for arm, data in result.training_sets.items():
        ids = set(data.patient_ids[~data.is_synthetic])
        real_ids = ids if real_ids is None else real_ids
        assert ids == real_ids, arm
        assert not ids & set(test.patient_ids)
    facts = overall.xs(0, level="seed")
    assert facts[("real", "n_train_synthetic")] == 0
    for arm in ("real_synth", "real_oversample"):
        assert facts[(arm, "n_train_synthetic")] == 40
    assert facts[("real_fairsynth", "n_train_synthetic")] >= 40
    assert facts[("real_fairsynth", "fairsynth_best_round")] in (0.0, 1.0)


def test_outputs_have_the_report_quality_and_longitudinal_figures(experiment, tmp_path):
    from equisynth.evaluation.outputs import write_experiment

    p, result = experiment
    paths = write_experiment(result, tmp_path / "out", protocol=p, title="FairSynth experiment")
    names = set(paths)
    assert {"results.csv", "summary.md", "report.html", "quality.csv", "config.json"} <= names
    assert {"patients_pca.png", "visit_structure.png", "metrics.png", "group_tpr.png"} <= names
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "Paired differences against `real`" in summary and "real_fairsynth" in summary
    quality = pd.read_csv(tmp_path / "out" / "quality.csv")
    assert set(quality["arm"]) == {"real_synth", "real_oversample", "real_fairsynth"}
    q = quality[quality["stratum"] == "all"].set_index(["arm", "metric"])["value"]
    assert q[("real_oversample", "patient_exact_copy_rate")] == 1.0  # replicas are copies
    assert 0 <= q[("real_synth", "patient_exact_copy_rate")] < 1.0
    assert "Synthetic data quality" in summary and "patient_dcr_ratio" in summary


def test_results_do_not_depend_on_the_number_of_jobs(task):
    from equisynth.evaluation.runner import run_experiment

    p = protocol(task, arms=["real", "real_synth"])
    one = run_experiment(p, seeds=[3, 4], n_jobs=1).results
    two = run_experiment(p, seeds=[3, 4], n_jobs=2).results
    pd.testing.assert_frame_equal(one, two)


def test_grids_encode_the_setting_in_the_arm(task):
    p = protocol(task, arms=["real", "real_oversample"], grid="real", grid_values=[100, 200])
    rows = p.run_seed(0).rows
    facts = rows[rows["metric"].isin(["n_train_real", "n_train_synthetic"])]
    facts = facts.set_index(["arm", "metric"])["value"]
    assert facts[("real@n_real=100", "n_train_real")] == 100
    assert facts[("real_oversample@n_real=200", "n_train_real")] == 200
    # the synthetic total is fixed across the settings of the real grid
    n_synth = facts[("real_oversample@n_real=100", "n_train_synthetic")]
    assert n_synth == facts[("real_oversample@n_real=200", "n_train_synthetic")] > 0

    p = protocol(task, arms=["real", "real_oversample"], grid="synth", grid_values=[0, 25])
    rows = p.run_seed(0).rows
    facts = rows[rows["group"] == "all"].set_index(["arm", "metric"])["value"]
    assert facts[("real_oversample@n_synth=25", "n_train_synthetic")] == 25
    assert facts[("real_oversample@n_synth=0", "n_train_synthetic")] == 0

    p = protocol(task, arms=["real", "real_fairsynth"], grid="lambda", grid_values=[0, 1])
    arms = list(dict.fromkeys(p.run_seed(0).rows["arm"]))
    assert arms == ["real", "real_fairsynth@lambda=0", "real_fairsynth@lambda=1"]


def test_bad_options_and_data(task):
    from equisynth.data.tasks import SequenceTask

    with pytest.raises(DataError, match="insurance"):
        protocol(task, sensitive=["insurance"]).validate()
    with pytest.raises(ConfigError, match="gan"):
        protocol(task, arms=["real", "gan"]).validate()
    with pytest.raises(ConfigError, match="grid"):
        protocol(task, grid="real", grid_values=[5]).validate()
    with pytest.raises(ConfigError, match="grid_values"):
        protocol(task, grid_values=[5]).validate()
    negatives = np.flatnonzero(task.label == 0)
    single = task.subset(negatives)
    assert isinstance(single, SequenceTask)
    with pytest.raises(DataError, match="single label class"):
        protocol(single).validate()
