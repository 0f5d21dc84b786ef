"""Multi-seed runner: one protocol, N independent seeds, in parallel processes.

Each seed is a pure function of (protocol, seed): every random choice inside it is
drawn from generators seeded by that seed, so the results are identical whatever
the number of jobs and whatever the order in which seeds finish.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from equisynth.evaluation.backends import Backend
from equisynth.evaluation.protocols import ProtocolBase
from equisynth.evaluation.protocols._base import GENERATOR_ARMS
from equisynth.evaluation.protocols._scoring import RESULT_COLUMNS
from equisynth.exceptions import ConfigError, OutputExistsError

logger = logging.getLogger(__name__)

__all__ = ["ExperimentResult", "resolve_seeds", "run_experiment"]


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` returns.

    Attributes
    ----------
    results : DataFrame
        Tidy long table ``seed, arm, metric, group, value`` sorted by seed, then arm order.
    training_sets : dict of str to DataFrame
        Each arm's training table of the first seed (with ``is_synthetic``), for plots.
    test : DataFrame or None
        The first seed's test set.
    seconds : DataFrame
        Wall time of every (seed, arm).
    protocol : str
    """

    results: pd.DataFrame
    training_sets: dict[str, pd.DataFrame] = field(default_factory=dict)
    test: pd.DataFrame | None = None
    seconds: pd.DataFrame | None = None
    protocol: str = ""
    arms: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0


def resolve_seeds(seeds: int | Sequence[int]) -> list[int]:
    """``10`` -> ``[0, ..., 9]``; a sequence of non-negative ints is kept as is."""
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"seeds must be a positive number of seeds, got {seeds}")
        return list(range(seeds))
    out = [int(s) for s in seeds]
    if not out or any(s < 0 for s in out) or len(set(out)) != len(out):
        raise ConfigError(f"seeds must be distinct non-negative integers, got {list(seeds)}")
    return out


def run_experiment(
    protocol: ProtocolBase,
    *,
    seeds: int | Sequence[int] = 10,
    n_jobs: int = 1,
    verbose: bool = False,
    backend: Backend = "local",
) -> ExperimentResult:
    """Run ``protocol`` for every seed, ``n_jobs`` seeds at a time (loky processes).

    Parameters
    ----------
    protocol : MCRAGEProtocol or GenericProtocol
    seeds : int or sequence of int, default=10
        Number of seeds (0..N-1) or the seeds themselves.
    n_jobs : int, default=1
        Worker processes; ``-1`` uses every core. Results do not depend on it.
    verbose : bool, default=False
        Progress bar over seeds.
    backend : {"local", "ray"}, default="local"
        Where the (seed, arm) tasks run: local processes, or Ray (a cluster found by
        ``ray.init()``, else a local Ray instance); see :mod:`equisynth.evaluation.backends`.
        Results do not depend on it.

    Examples
    --------
    >>> from equisynth.evaluation.datasets import load_kidney_transplant
    >>> from equisynth.evaluation.protocols import GenericProtocol
    >>> ds = load_kidney_transplant()
    >>> p = GenericProtocol(data=ds.frame, target="death", positive=1, sensitive=["race", "sex"],
    ...                     arms=["real"], classifier="lr")
    >>> run_experiment(p, seeds=2).results["seed"].unique().tolist()
    [0, 1]
    """
    from equisynth.evaluation.backends import map_seeds

    if not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ConfigError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
    protocol.validate()
    seed_list = resolve_seeds(seeds)
    start = time.perf_counter()
    outs = map_seeds(protocol, seed_list, n_jobs=n_jobs, backend=backend, verbose=verbose)
    outs = sorted(outs, key=lambda r: seed_list.index(r.seed))
    results = pd.concat([o.rows for o in outs], ignore_index=True)[RESULT_COLUMNS]
    seconds = pd.DataFrame(
        [{"seed": o.seed, "arm": a, "seconds": t} for o in outs for a, t in o.seconds.items()]
    )
    first = outs[0]
    return ExperimentResult(
        results=results,
        training_sets=first.training_sets,
        test=first.test,
        seconds=seconds,
        protocol=protocol.name,
        arms=list(protocol.arms),
        wall_seconds=time.perf_counter() - start,
    )


def _protocol_config(protocol, result: ExperimentResult) -> dict:
    if protocol is None:
        return {"protocol": result.protocol, "arms": result.arms}
    keep = (
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
    )
    config = {k: getattr(protocol, k) for k in keep if hasattr(protocol, k)}
    config["protocol"] = protocol.name
    config["features"] = protocol.features
    config["n_rows"] = len(protocol.data)
    config["seeds"] = sorted(result.results["seed"].unique().tolist())
    return json.loads(json.dumps(config, default=str))


def write_experiment(
    result: ExperimentResult,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    plots: bool = True,
    title: str = "equisynth experiment",
    protocol: ProtocolBase | None = None,
) -> dict[str, Path]:
    """Write ``results.csv``, ``summary.md``, ``report.html``, plots and ``config.json``.

    The directory is built next to ``out_dir`` and renamed into place when complete.
    An existing ``out_dir`` is replaced only with ``overwrite=True`` and only if it is
    empty or an earlier equisynth output (it holds a ``results.csv``).

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
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        written = _write_all(result, tmp, plots=plots, title=title, protocol=protocol)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {str(p.relative_to(tmp)): out_dir / p.relative_to(tmp) for p in written}


def _notes(protocol, result: ExperimentResult) -> str:
    n_seeds = result.results["seed"].nunique()
    lines = [f"Protocol `{result.protocol}`, {n_seeds} seed(s), arms: {', '.join(result.arms)}."]
    if protocol is not None:
        lines.append(
            f"Downstream model `{protocol.classifier}` on features {', '.join(protocol.features)} "
            f"(sensitive attributes as inputs: {protocol.include_sensitive}); every arm is scored "
            "on the same held-out real test set of its seed."
        )
        if any(a in GENERATOR_ARMS for a in result.arms):
            how = (
                "checkpoint chosen by downstream F1 on a validation split of the training set"
                if protocol.model_selection and protocol.generator == "diffusion"
                else "no checkpoint selection"
            )
            lines.append(
                f"Generator `{protocol.generator}` {dict(protocol.generator_params)}; {how}."
            )
    return "\n".join(lines)


def _write_all(result, tmp: Path, *, plots: bool, title: str, protocol) -> list[Path]:
    from equisynth.evaluation import report

    report.write_results_csv(result.results, tmp / "results.csv")
    config = _protocol_config(protocol, result)
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if result.seconds is not None:
        result.seconds.to_csv(tmp / "seconds.csv", index=False)
    figures: dict[str, Path] = {}
    if plots:
        figures = _write_plots(result, tmp, protocol)
    notes = _notes(protocol, result)
    report.write_summary_md(result.results, tmp / "summary.md", title=title, notes=notes)
    report.write_report_html(result.results, figures, tmp / "report.html", title=title, notes=notes)
    return sorted(p for p in tmp.rglob("*") if p.is_file())


def _write_plots(result: ExperimentResult, tmp: Path, protocol) -> dict[str, Path]:
    """Metric bars, per-group TPR, UMAP of each arm's training set, per-stratum densities."""
    from equisynth.evaluation import plots, stats

    figures: dict[str, Path] = {}
    summary = stats.summarize(result.results)
    overall = set(result.results.loc[result.results["group"] == "all", "metric"])
    wanted = ("accuracy", "f1", "auroc", "worst_group_tpr", "disparate_impact")
    metrics = [m for m in wanted if m in overall]
    figures["Metrics per arm (mean, 95% CI over seeds)"] = _plot(
        plots.plot_metric_bars, summary, metrics, tmp / "metrics.png"
    )
    figures["True-positive rate per group and arm"] = _plot(
        plots.plot_group_tpr, summary, tmp / "group_tpr.png"
    )
    if protocol is None or not result.training_sets:
        return figures
    features = protocol.features
    strata_cols = [protocol.target, *protocol.sensitive]
    arms = {}
    for arm, train in result.training_sets.items():
        labels = train[strata_cols].astype(str).agg("|".join, axis=1).to_numpy()
        arms[arm] = (train[features], train["is_synthetic"].to_numpy(), labels)
    figures["UMAP of each arm's training set (first seed)"] = _plot(
        plots.plot_umap, arms, tmp / "umap.png", random_state=0
    )
    numeric = [c for c in features if c not in strata_cols and _is_numeric(train[c])]
    for arm in result.arms:
        train = result.training_sets.get(arm)
        if train is None or not train["is_synthetic"].any() or not numeric:
            continue
        real = train[~train["is_synthetic"]]
        synth = train[train["is_synthetic"]]
        figures[f"Generated vs real rows per stratum: {arm} (first seed)"] = _plot(
            plots.plot_strata_densities,
            real,
            synth,
            strata_cols,
            numeric,
            tmp / f"densities_{arm}.png",
        )
    return figures


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _plot(func, *args, **kwargs) -> Path:
    out = func(*args, **kwargs)
    return Path(out) if isinstance(out, str | Path) else Path(args[-1])
