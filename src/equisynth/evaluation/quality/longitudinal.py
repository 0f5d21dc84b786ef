"""Fidelity and privacy of synthetic longitudinal EHR (patients -> visits -> codes).

A cohort is either an object with a ``patients`` attribute (such as
``equisynth.data.cohort.Cohort``), whose patients have ``visits`` and whose visits have ``codes``,
or plain nested lists: a list of patients, each a list of visits, each an iterable of codes.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from equisynth.evaluation.quality.privacy import privacy_metrics_arrays
from equisynth.exceptions import DataError

__all__ = ["as_visit_sets", "longitudinal_report", "patient_matrix"]


def as_visit_sets(cohort) -> list[list[frozenset]]:
    """Normalise a cohort (Cohort-like object or nested lists) to lists of visit code sets."""
    patients = getattr(cohort, "patients", cohort)
    if isinstance(patients, dict):
        patients = list(patients.values())
    try:
        out = []
        for patient in patients:
            visits = getattr(patient, "visits", patient)
            out.append([frozenset(getattr(v, "codes", v)) for v in visits])
    except TypeError as exc:
        raise DataError(
            "expected a cohort: an object with .patients, or a list of patients, each a list of "
            f"visits, each an iterable of codes; got {type(cohort).__name__} ({exc})"
        ) from exc
    if not out:
        raise DataError("the cohort holds no patient")
    return out


def _visit_code_freq(cohort: list[list[frozenset]]) -> Counter:
    counts = Counter(c for p in cohort for v in p for c in v)
    n_visits = max(1, sum(len(p) for p in cohort))
    return Counter({c: n / n_visits for c, n in counts.items()})


def _pair_freq(cohort: list[list[frozenset]]) -> Counter:
    counts = Counter(
        pair for p in cohort for v in p for pair in combinations(sorted(map(str, v)), 2)
    )
    n_visits = max(1, sum(len(p) for p in cohort))
    return Counter({k: n / n_visits for k, n in counts.items()})


def patient_matrix(cohort, vocabulary) -> np.ndarray:
    """Multi-hot patient representation: 1 where the patient has the code in any visit."""
    index = {c: i for i, c in enumerate(vocabulary)}
    x = np.zeros((len(cohort), len(index)))
    for i, p in enumerate(cohort):
        for v in p:
            for c in v:
                j = index.get(c)
                if j is not None:
                    x[i, j] = 1.0
    return x


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def longitudinal_report(
    real_cohort,
    synth_cohort,
    *,
    real_holdout=None,
    top_pairs: int = 50,
    random_state=None,
) -> pd.DataFrame:
    """Fidelity (and, with ``real_holdout``, privacy) metrics of a synthetic cohort.

    Metrics (tidy ``metric, stratum, column, value``; ``stratum="all"``):

    - ``code_freq_pearson``: correlation over the union of codes of the share of visits holding
      each code; ``code_freq_max_abs_diff``; ``synth_unknown_code_share`` (synthetic codes that
      never occur in the real cohort).
    - ``visits_per_patient_ks``, ``codes_per_visit_ks`` (two-sample KS statistics) and the
      real/synthetic means ``*_mean_real`` / ``*_mean_synth``.
    - ``pair_freq_pearson`` / ``pair_freq_mean_abs_diff`` over the ``top_pairs`` most frequent
      within-visit code pairs of the real cohort.
    - With ``real_holdout`` (patients the generator never saw): the privacy metrics of
      :func:`~equisynth.evaluation.quality.privacy.privacy_metrics_arrays` on multi-hot patient
      vectors over the real vocabulary, with ``patient_`` prefixed.

    Examples
    --------
    >>> real = [[{"a", "b"}, {"a"}], [{"b", "c"}]]
    >>> rep = longitudinal_report(real, real).set_index("metric")["value"]
    >>> float(rep["visits_per_patient_ks"]), round(float(rep["code_freq_pearson"]), 6)
    (0.0, 1.0)
    """
    real, synth = as_visit_sets(real_cohort), as_visit_sets(synth_cohort)
    rows: dict[str, float] = {"n_patients_real": len(real), "n_patients_synth": len(synth)}
    fr, fs = _visit_code_freq(real), _visit_code_freq(synth)
    codes = sorted(set(fr) | set(fs), key=str)
    a = np.array([fr.get(c, 0.0) for c in codes])
    b = np.array([fs.get(c, 0.0) for c in codes])
    rows["code_freq_pearson"] = _corr(a, b)
    rows["code_freq_max_abs_diff"] = float(np.abs(a - b).max()) if codes else 0.0
    n_synth_codes = sum(len(v) for p in synth for v in p)
    unknown = sum(1 for p in synth for v in p for c in v if c not in fr)
    rows["synth_unknown_code_share"] = unknown / n_synth_codes if n_synth_codes else 0.0
    for name, fn in (
        ("visits_per_patient", lambda cohort: [len(p) for p in cohort]),
        ("codes_per_visit", lambda cohort: [len(v) for p in cohort for v in p]),
    ):
        x, y = np.asarray(fn(real), float), np.asarray(fn(synth), float)
        rows[f"{name}_ks"] = (
            float(stats.ks_2samp(x, y).statistic) if x.size and y.size else float("nan")
        )
        rows[f"{name}_mean_real"] = float(x.mean()) if x.size else float("nan")
        rows[f"{name}_mean_synth"] = float(y.mean()) if y.size else float("nan")
    pr, ps = _pair_freq(real), _pair_freq(synth)
    top = [k for k, _ in pr.most_common(top_pairs)]
    if top:
        a = np.array([pr[k] for k in top])
        b = np.array([ps.get(k, 0.0) for k in top])
        rows["pair_freq_pearson"] = _corr(a, b)
        rows["pair_freq_mean_abs_diff"] = float(np.abs(a - b).mean())
    if real_holdout is not None:
        holdout = as_visit_sets(real_holdout)
        vocab = sorted(fr, key=str)
        metrics = privacy_metrics_arrays(
            patient_matrix(real, vocab),
            patient_matrix(synth, vocab),
            patient_matrix(holdout, vocab),
            random_state=random_state,
        )
        rows.update({f"patient_{k}": v for k, v in metrics.items()})
    return pd.DataFrame(
        [(m, "all", "", float(v)) for m, v in rows.items()],
        columns=["metric", "stratum", "column", "value"],
    )
