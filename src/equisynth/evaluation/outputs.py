"""Write an experiment's output directory: results, summary, report, plots, config.

``write_experiment`` builds everything in a temporary directory next to ``out_dir`` and
renames it into place when complete, so an interrupted run never leaves half a report.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pandas as pd

from equisynth.evaluation.arm_quality import QualityOptions
from equisynth.evaluation.protocols import ProtocolBase
from equisynth.evaluation.protocols._base import GENERATOR_ARMS, RESAMPLING_ARMS
from equisynth.evaluation.runner import ExperimentResult
from equisynth.exceptions import OutputExistsError
from equisynth.io import temp_dir

logger = logging.getLogger(__name__)

__all__ = ["experiment_quality", "write_experiment"]

_CONFIG_KEYS = (
    "sampling_strategy",
    "target",
    "positive",
    "sensitive",
    "arms",
    "classifier",
    "include_sensitive",
    "test_size",
    "generator",
    "generator_params",
    "model_selection",
    "eval_every",
    "val_size",
    "param_grid",
    "search_budget",
    "exclude_columns",
    "group_col",
    "minority",
    "keep_fraction",
    "min_group_size",
)


def _is_longitudinal(protocol) -> bool:
    """Protocols over longitudinal EHR (``SequenceTask``s) rather than tables (FairSynth)."""
    return bool(getattr(protocol, "longitudinal", False))


def _protocol_config(protocol: ProtocolBase | None, result: ExperimentResult) -> dict:
    if protocol is None:
        return {"protocol": result.protocol, "arms": result.arms}
    if _is_longitudinal(protocol):
        from equisynth.evaluation.longitudinal_outputs import longitudinal_config

        return longitudinal_config(protocol, result)
    config = {k: getattr(protocol, k) for k in _CONFIG_KEYS if hasattr(protocol, k)}
    config["protocol"] = protocol.name
    config["features"] = protocol.features
    config["n_rows"] = len(protocol.data)
    config["seeds"] = sorted(result.results["seed"].unique().tolist())
    return json.loads(json.dumps(config, default=str))


def _reference_arm(protocol: ProtocolBase | None, result: ExperimentResult) -> str:
    if protocol is not None and protocol._base_arm() in result.arms:
        return protocol._base_arm()
    return result.arms[0] if result.arms else str(result.results["arm"].iloc[0])


def _notes(protocol: ProtocolBase | None, result: ExperimentResult) -> str:
    if _is_longitudinal(protocol):
        from equisynth.evaluation.longitudinal_outputs import longitudinal_notes

        return longitudinal_notes(protocol, result)
    n_seeds = result.results["seed"].nunique()
    lines = [
        f"Protocol `{result.protocol}`, {n_seeds} seed(s), arms: {', '.join(result.arms)}; "
        f"wall time {result.wall_seconds:.0f} s."
    ]
    if protocol is not None:
        lines.append(
            f"Downstream model `{protocol.classifier}` on features {', '.join(protocol.features)} "
            f"(sensitive attributes as inputs: {protocol.include_sensitive}); every arm is scored "
            f"on the same held-out real test set of its seed; groups are "
            f"{' x '.join(protocol.sensitive)}, a group rate needs at least "
            f"{protocol.min_group_size} rows in its denominator."
        )
        if any(a in RESAMPLING_ARMS for a in result.arms):
            lines.append(
                f"Resampling strategy `{protocol.sampling_strategy}` for every resampling arm."
            )
        if any(a in GENERATOR_ARMS for a in result.arms):
            if protocol.generator != "diffusion":
                how = "empirical test-double generator (copies real rows; not a method)"
            elif protocol.model_selection:
                how = "checkpoint chosen by downstream F1 on a validation split of the training set"
            else:
                how = "no checkpoint selection"
            lines.append(
                f"Generator `{protocol.generator}` {dict(protocol.generator_params)}; {how}."
            )
    return "\n".join(lines)


def experiment_quality(
    result: ExperimentResult, protocol: ProtocolBase, options: QualityOptions | None = None
) -> pd.DataFrame | None:
    """The quality section (see :func:`equisynth.evaluation.arm_quality.arm_quality`) of
    the first seed, or ``None`` when no arm holds synthetic rows or the sets were not kept."""
    from equisynth.evaluation.arm_quality import arm_quality

    if _is_longitudinal(protocol):
        from equisynth.evaluation.longitudinal_outputs import longitudinal_quality

        return longitudinal_quality(result, protocol)
    sets = {a: t for a, t in result.training_sets.items() if t["is_synthetic"].any()}
    if not sets or result.holdout is None:
        return None
    columns = list(dict.fromkeys([*protocol.features, protocol.target, *protocol.sensitive]))
    return arm_quality(
        sets,
        result.holdout,
        columns=columns,
        strata=[protocol.target, *protocol.sensitive],
        options=options,
        random_state=0,
    )


def write_experiment(
    result: ExperimentResult,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    plots: bool = True,
    quality: QualityOptions | None = QualityOptions(),
    title: str = "equisynth experiment",
    protocol: ProtocolBase | None = None,
) -> dict[str, Path]:
    """Write ``results.csv``, ``summary.md``, ``report.html``, plots and ``config.json``.

    Parameters
    ----------
    result : ExperimentResult
    out_dir : path
        Built next to itself and renamed into place when complete. An existing
        directory is replaced only with ``overwrite=True`` and only if it is empty or an
        earlier equisynth output (it holds a ``results.csv``).
    plots : bool, default=True
        PNG figures (embedded in ``report.html``).
    quality : QualityOptions or None, default=QualityOptions()
        Fidelity and privacy of the synthetic rows of each arm (first seed), written to
        ``quality.csv`` and added to the summary and the report (needs ``protocol``);
        ``None`` skips it.
    title : str
    protocol : the protocol that produced ``result`` (for notes, config and figures)

    Returns
    -------
    dict of str to Path
        The written files by name (paths inside ``out_dir``).
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise OutputExistsError(f"--out {str(out_dir)!r} is a file; give a directory path")
        entries = list(out_dir.iterdir())
        if entries and not overwrite:
            raise OutputExistsError(
                f"output directory {str(out_dir)!r} exists; pass --overwrite to replace it"
            )
        if entries and not (out_dir / "results.csv").is_file():
            raise OutputExistsError(
                f"output directory {str(out_dir)!r} is not empty and is not an equisynth output; "
                "choose another --out"
            )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(out_dir.parent, f".{out_dir.name}.tmp-", "")
    try:
        written = _write_all(
            result, tmp, plots=plots, quality=quality, title=title, protocol=protocol
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {str(p.relative_to(tmp)): out_dir / p.relative_to(tmp) for p in written}


def _write_all(result, tmp: Path, *, plots: bool, quality, title: str, protocol):
    from equisynth.evaluation import report

    report.write_results_csv(result.results, tmp / "results.csv")
    config = _protocol_config(protocol, result)
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if result.seconds is not None:
        result.seconds.to_csv(tmp / "seconds.csv", index=False)
    quality_table = None
    if quality is not None and protocol is not None:
        quality_table = experiment_quality(result, protocol, quality)
        if quality_table is not None:
            quality_table.to_csv(tmp / "quality.csv", index=False)
    figures: dict[str, Path] = {}
    if plots:
        figures = _write_plots(result, tmp, protocol)
    notes = _notes(protocol, result)
    tables = report.report_tables(
        result.results,
        reference=_reference_arm(protocol, result),
        quality=quality_table,
        quality_note=report.LONGITUDINAL_QUALITY_NOTE if _is_longitudinal(protocol) else None,
    )
    report.write_summary_md(
        result.results, tmp / "summary.md", title=title, notes=notes, tables=tables
    )
    report.write_report_html(
        result.results, figures, tmp / "report.html", title=title, notes=notes, tables=tables
    )
    return sorted(p for p in tmp.rglob("*") if p.is_file())


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _write_plots(result: ExperimentResult, tmp: Path, protocol) -> dict[str, Path]:
    """Metric bars, per-group TPR, UMAP of each arm's training set, per-stratum densities."""
    from equisynth.evaluation import plots, stats

    figures: dict[str, Path] = {}
    summary = stats.summarize(result.results)
    wanted = (
        "accuracy",
        "f1",
        "auroc",
        "worst_group_tpr",
        "disparate_impact",
        "equalized_odds_difference",
    )
    figures["Accuracy and fairness metrics per arm (mean, 95% CI over seeds)"] = (
        plots.plot_metric_bars(summary, wanted, tmp / "metrics.png")
    )
    figures["True-positive rate per group and arm (mean, 95% CI over seeds)"] = (
        plots.plot_group_tpr(summary, tmp / "group_tpr.png")
    )
    if protocol is None or not result.training_sets:
        return figures
    if _is_longitudinal(protocol):
        from equisynth.evaluation.longitudinal_outputs import longitudinal_figures

        figures.update(longitudinal_figures(result, protocol, tmp))
        return figures
    features = protocol.features
    strata_cols = [protocol.target, *protocol.sensitive]
    arms = {}
    for arm, train in result.training_sets.items():
        labels = train[strata_cols].astype(str).agg(" & ".join, axis=1).to_numpy()
        arms[arm] = (train[features], train["is_synthetic"].to_numpy(), labels)
    figures["2-d projection of each arm's training set (first seed; paper Fig. 2)"] = (
        plots.plot_umap(arms, tmp / "umap.png", random_state=0)
    )
    for arm in result.arms:
        train = result.training_sets.get(arm)
        if train is None or not train["is_synthetic"].any():
            continue
        numeric = [c for c in features if c not in strata_cols and _is_numeric(train[c])]
        if not numeric:
            continue
        real = train[~train["is_synthetic"]]
        synth = train[train["is_synthetic"]]
        figures[f"Generated vs real rows per stratum: {arm} (first seed; paper Fig. 3)"] = (
            plots.plot_strata_densities(
                real,
                synth,
                strata_cols,
                numeric,
                tmp / f"densities_{arm}.png",
                holdout=result.holdout,
            )
        )
    return figures
