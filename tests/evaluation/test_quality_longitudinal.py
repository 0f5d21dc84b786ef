"""Longitudinal quality metrics on toy cohorts with known answers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from equisynth.evaluation.quality import longitudinal_report
from equisynth.exceptions import DataError


def _cohort(n: int, seed: int, *, n_codes: int = 30, max_visits: int = 5) -> list:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_codes + 1)
    weights /= weights.sum()
    codes = [f"C{i}" for i in range(n_codes)]
    out = []
    for _ in range(n):
        visits = []
        for _ in range(rng.integers(1, max_visits + 1)):
            k = rng.integers(1, 6)
            visit = set(rng.choice(codes, size=k, replace=False, p=weights))
            if "C0" in visit:  # a strong pair
                visit.add("C7")
            visits.append(visit)
        out.append(visits)
    return out


def _report(real, synth, **kw):
    return longitudinal_report(real, synth, **kw).set_index("metric")["value"]


def test_same_process_scores_well_and_broken_one_badly():
    real, fresh = _cohort(300, 0), _cohort(300, 1)
    good = _report(real, fresh, real_holdout=_cohort(300, 2), random_state=0)
    assert good["code_freq_pearson"] > 0.95
    assert good["visits_per_patient_ks"] < 0.15 and good["codes_per_visit_ks"] < 0.15
    assert good["pair_freq_pearson"] > 0.8
    assert abs(good["patient_mia_auc"] - 0.5) < 0.1
    # uniform code frequencies, one visit per patient, no pair structure
    rng = np.random.default_rng(3)
    bad_cohort = [
        [set(rng.choice([f"C{i}" for i in range(30)], 3, replace=False))] for _ in range(300)
    ]
    bad = _report(real, bad_cohort)
    assert bad["code_freq_pearson"] < 0.5
    assert bad["visits_per_patient_ks"] > 0.5
    assert bad["pair_freq_pearson"] < good["pair_freq_pearson"] - 0.3


def test_copied_patients_are_flagged():
    real, holdout = (
        _cohort(200, 0, n_codes=200, max_visits=8),
        _cohort(200, 5, n_codes=200, max_visits=8),
    )
    m = _report(real, real, real_holdout=holdout, random_state=0)
    assert m["patient_exact_copy_rate"] == 1.0
    assert m["patient_dcr_ratio"] == 0.0
    assert m["patient_mia_auc"] > 0.9


@dataclass
class _Visit:
    codes: list


@dataclass
class _Patient:
    visits: list = field(default_factory=list)


@dataclass
class _Cohort:
    patients: list


def test_accepts_cohort_like_objects_and_rejects_garbage():
    nested = _cohort(50, 0)
    obj = _Cohort([_Patient([_Visit(sorted(v)) for v in p]) for p in nested])
    a = _report(nested, nested)
    b = _report(obj, nested)
    assert a.equals(b)
    assert b["visits_per_patient_ks"] == 0.0 and b["code_freq_pearson"] == pytest.approx(1.0)
    with pytest.raises(DataError, match="cohort"):
        longitudinal_report(3, nested)
    with pytest.raises(DataError, match="no patient"):
        longitudinal_report([], nested)
