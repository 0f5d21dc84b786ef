"""The longitudinal (FairSynth) parts of an experiment's outputs: config, notes, quality, figures.

:func:`equisynth.evaluation.outputs.write_experiment` calls these for a protocol with
``longitudinal = True`` (:class:`~equisynth.evaluation.protocols.fairsynth.FairSynthProtocol`), whose
training sets are :class:`~equisynth.data.tasks.SequenceTask`\\ s instead of tables. The tables,
statistics and report are shared with the tabular experiments.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from equisynth.evaluation.arm_quality import QUALITY_COLUMNS

logger = logging.getLogger(__name__)

__all__ = [
    "longitudinal_config",
    "longitudinal_figures",
    "longitudinal_notes",
    "longitudinal_quality",
]

_CONFIG_KEYS = (
    "sensitive",
    "arms",
    "objective",
    "test_size",
    "grid",
    "grid_values",
    "n_synth",
    "synth_per_group",
    "min_group_patients",
    "generator",
    "generator_params",
    "downstream_params",
    "fairsynth_params",
    "min_group_size",
)
#: Fewest real and synthetic patients of a group for its per-group fidelity row.
MIN_GROUP_QUALITY = 10


def longitudinal_config(protocol, result) -> dict:
    """``config.json`` of a longitudinal experiment."""
    task = protocol.task
    config = {k: getattr(protocol, k) for k in _CONFIG_KEYS}
    config.update(
        protocol=protocol.name,
        task=task.task,
        n_patients=task.n_patients,
        n_codes=task.n_codes,
        demographics=list(task.demographics.columns),
        positive_share=float(task.label.mean()),
        seeds=sorted(result.results["seed"].unique().tolist()),
    )
    return json.loads(json.dumps(config, default=str))


def longitudinal_notes(protocol, result) -> str:
    """The notes paragraph of ``summary.md`` / ``report.html``."""
    task = protocol.task
    n_seeds = result.results["seed"].nunique()
    lines = [
        f"Protocol `{result.protocol}`, {n_seeds} seed(s), arms: {', '.join(result.arms)}; "
        f"wall time {result.wall_seconds:.0f} s.",
        f"Task `{task.task}`: {task.n_patients} patients, {task.n_codes} codes, "
        f"{100 * task.label.mean():.1f}% positive; patient-level train/test split "
        f"(test share {protocol.test_size}) stratified by group x label; every arm is scored on "
        "the same held-out real test patients of its seed, never on synthetic ones; groups are "
        f"{' x '.join(protocol.sensitive)}, a group rate needs at least "
        f"{protocol.min_group_size} test patients in its denominator.",
        f"Downstream model: SequenceClassifier {dict(protocol.downstream_params)} (same settings "
        "and seed for every arm).",
    ]
    if any(a in ("real_synth", "real_fairsynth") for a in result.arms):
        how = (
            "empirical test double (copies real patients; not a method)"
            if protocol.generator == "empirical"
            else "HALO-style generator"
        )
        lines.append(
            f"Generator: {how} {dict(protocol.generator_params)}; labels of synthetic patients are "
            "drawn from the generator given the demographics. Feedback loop "
            f"(objective `{protocol.objective}`): {dict(protocol.fairsynth_params)}; groups with "
            f"fewer than {protocol.min_group_patients} real training patients get no added "
            "patients."
        )
    tpr = result.results[(result.results["metric"] == "tpr") & (result.results["group"] != "all")]
    scored = tpr.dropna(subset=["value"]).groupby(["seed", "arm"])["group"].nunique()
    scored = scored.reindex(tpr.groupby(["seed", "arm"]).size().index, fill_value=0)
    if len(scored) and (scored < 2).any():
        lines.append(
            f"Caution: in {int((scored < 2).sum())} of {len(scored)} (seed, arm) results the TPR "
            "could be scored for fewer than two groups (the others have fewer than "
            f"{protocol.min_group_size} positive test patients), so worst-group TPR is the TPR of "
            "the one scored group there; disparate impact uses the groups with at least "
            f"{protocol.min_group_size} test patients."
        )
    if protocol.grid is not None:
        lines.append(
            f"Grid `{protocol.grid}` over {list(protocol.grid_values)}: the setting is written "
            "after `@` in the arm name; paired differences compare each arm with `real` of the "
            "same setting."
        )
    return "\n".join(lines)


def _rows(report: pd.DataFrame, arm: str, stratum: str) -> pd.DataFrame:
    out = report.copy()
    out["stratum"] = stratum
    out["section"] = np.where(out["metric"].str.startswith("patient_"), "privacy", "fidelity")
    out["arm"] = arm
    return out


def _positive_rows(real, synth, stratum: str) -> pd.DataFrame:
    return pd.DataFrame(
        [
            ("positive_share_real", stratum, "", float(real.label.mean())),
            ("positive_share_synth", stratum, "", float(synth.label.mean())),
        ],
        columns=["metric", "stratum", "column", "value"],
    )


def longitudinal_quality(result, protocol) -> pd.DataFrame | None:
    """Fidelity and privacy of each arm's added patients (first seed).

    For every arm with added patients (the generator arms, and the oversampling replicas for
    comparison): :func:`~equisynth.evaluation.quality.longitudinal.longitudinal_report` of the
    added patients against the arm's real training patients, with the real test patients as
    the held-out reference of the privacy metrics; per group, the same fidelity metrics for
    groups with at least 10 real and 10 added patients, and the positive share of real and
    added patients (what the fairness term moves).
    """
    from equisynth.evaluation.quality.longitudinal import longitudinal_report

    test = result.holdout if result.holdout is not None else result.test
    sets = {a: t for a, t in result.training_sets.items() if t.is_synthetic.any()}
    if not sets or test is None:
        return None
    holdout = test.visit_sets()
    frames = []
    for arm, data in sets.items():
        real, synth = data.subset(~data.is_synthetic), data.subset(data.is_synthetic)
        rep = longitudinal_report(
            real.visit_sets(), synth.visit_sets(), real_holdout=holdout, random_state=0
        )
        frames += [_rows(rep, arm, "all"), _rows(_positive_rows(real, synth, "all"), arm, "all")]
        g_real = real.groups(protocol.sensitive).to_numpy()
        g_synth = synth.groups(protocol.sensitive).to_numpy()
        for g in sorted(set(g_synth)):
            r, s = real.subset(g_real == g), synth.subset(g_synth == g)
            if min(r.n_patients, s.n_patients) < MIN_GROUP_QUALITY:
                continue
            rep = longitudinal_report(r.visit_sets(), s.visit_sets())
            frames += [_rows(rep, arm, g), _rows(_positive_rows(r, s, g), arm, g)]
        logger.info("quality of arm %s: %d added patients scored", arm, synth.n_patients)
    out = pd.concat(frames, ignore_index=True)
    out["column"] = out["column"].fillna("")
    return out[QUALITY_COLUMNS]


def longitudinal_figures(result, protocol, tmp: Path) -> dict[str, Path]:
    """PCA of multi-hot patient vectors per arm; visit-structure histograms per generator arm."""
    from equisynth.evaluation import plots

    figures: dict[str, Path] = {}
    sets = result.training_sets
    first = next(iter(sets.values()))
    arms = {a: (t.visits, t.is_synthetic) for a, t in sets.items()}
    figures["PCA of multi-hot patient vectors of each arm's training set (first seed)"] = (
        plots.plot_patient_projection(arms, first.n_codes, tmp / "patients_pca.png")
    )
    generated = {
        a: (
            [v for v, s in zip(t.visits, t.is_synthetic, strict=True) if not s],
            [v for v, s in zip(t.visits, t.is_synthetic, strict=True) if s],
        )
        for a, t in sets.items()
        if a.split("@")[0] in ("real_synth", "real_fairsynth") and t.is_synthetic.any()
    }
    if generated:
        holdout = result.holdout.visits if result.holdout is not None else None
        figures["Visits per patient and codes per visit, real vs generated (first seed)"] = (
            plots.plot_visit_histograms(generated, tmp / "visit_structure.png", holdout=holdout)
        )
    return figures
