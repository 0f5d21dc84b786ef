"""``equisynth experiment mcrage``: the MCRAGE paper's experiment over many seeds.

``equisynth experiment fairsynth`` lives in :mod:`equisynth.cli.experiment_fairsynth` and is
registered on the same ``experiment`` group here.

Register on the main app with :func:`register`. The module also holds the small
helpers shared by ``evaluate`` and ``demo`` (error mapping, arm parsing, the table
printed at the end).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from equisynth.cli._common import handle_errors, parse_strategy
from equisynth.exceptions import ConfigError
from equisynth.manifest import start_run

__all__ = [
    "configure_logging",
    "finish",
    "handle_errors",
    "mcrage_command",
    "parse_arms",
    "register",
]

DEFAULT_N_ITER = 1000


def parse_arms(values: Sequence[str] | None, allowed: Sequence[str]) -> list[str]:
    """Arms from repeated and/or comma-separated ``--arms`` values; all arms when none given."""
    if not values:
        return list(allowed)
    arms = [a.strip() for v in values for a in v.split(",") if a.strip()]
    bad = [a for a in arms if a not in allowed]
    if bad or not arms:
        raise ConfigError(
            f"unknown --arms value(s) {bad}; choose from {', '.join(allowed)} "
            "(comma-separated or repeated)"
        )
    return list(dict.fromkeys(arms))


def configure_logging(verbose: bool) -> None:
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def format_table(
    results,
    metrics: Sequence[str] = ("accuracy", "f1", "auroc", "worst_group_tpr", "disparate_impact"),
) -> str:
    """Mean ± sd over seeds of a few overall metrics, one line per arm (for the terminal)."""
    overall = results[results["group"] == "all"]
    present = [m for m in metrics if m in set(overall["metric"])]
    if not present:
        present = sorted(set(overall["metric"]))[:4]
    arms = list(dict.fromkeys(overall["arm"]))
    width = max(len("arm"), *(len(a) for a in arms))
    lines = ["  ".join([f"{'arm':<{width}}", *(f"{m:>17}" for m in present)])]
    for arm in arms:
        cells = []
        for metric in present:
            v = overall[(overall["arm"] == arm) & (overall["metric"] == metric)]["value"].dropna()
            if v.empty:
                cells.append(f"{'n/a':>17}")
                continue
            sd = v.std(ddof=1) if len(v) > 1 else 0.0
            cells.append(f"{v.mean():>8.3f} ± {sd:<6.3f}")
        lines.append("  ".join([f"{arm:<{width}}", *cells]))
    return "\n".join(lines)


def quality_options(value: str):
    """``--quality full|fast|none`` as :class:`QualityOptions` (or ``None``)."""
    from equisynth.evaluation.arm_quality import QualityOptions

    choices = {
        "full": QualityOptions(),
        "fast": QualityOptions(classifier="lr", cv=3, associations=False),
        "none": None,
    }
    if value not in choices:
        raise ConfigError(f"--quality must be full, fast or none, got {value!r}")
    return choices[value]


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an existing non-empty ``--out`` before any work (without ``--overwrite``)."""
    from equisynth.exceptions import OutputExistsError

    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise OutputExistsError(
            f"output directory {str(out)!r} exists; pass --overwrite to replace it"
        )


def finish(
    result, out: Path, *, overwrite: bool, plots: bool, title: str, protocol, quality=None
) -> None:
    """Write the outputs and print the table and where they are.

    ``quality`` is a :class:`~equisynth.evaluation.arm_quality.QualityOptions` or ``None``.
    """
    from equisynth.evaluation.outputs import write_experiment

    paths = write_experiment(
        result,
        out,
        overwrite=overwrite,
        plots=plots,
        quality=quality,
        title=title,
        protocol=protocol,
    )
    n_seeds = result.results["seed"].nunique()
    typer.echo(f"{title}: {n_seeds} seed(s), {result.wall_seconds:.1f} s")
    typer.echo(format_table(result.results))
    typer.echo(
        f"wrote {len(paths)} file(s) to {out}: " + ", ".join(sorted(p.name for p in paths.values()))
    )


@handle_errors
def mcrage_command(
    data: Annotated[
        Path, typer.Option("--data", help="patient_treatment.csv (the MCRAGE paper's table)")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output directory")],
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Number of seeds")] = 10,
    arms: Annotated[
        list[str] | None,
        typer.Option("--arms", help="Arms to run (comma-separated or repeated); default all"),
    ] = None,
    classifier: Annotated[str, typer.Option("--classifier", help="rf, lr or hgb")] = "rf",
    jobs: Annotated[int, typer.Option("--jobs", help="Parallel seeds (-1: all cores)")] = 1,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="local (processes on this machine) or ray (a Ray cluster; pip install "
            "'equisynth[ray]'); same results either way",
        ),
    ] = "local",
    n_iter: Annotated[int, typer.Option("--n-iter", min=1, help="Generator training steps")] = (
        DEFAULT_N_ITER
    ),
    eval_every: Annotated[
        int, typer.Option("--eval-every", min=1, help="Steps between checkpoint evaluations")
    ] = 250,
    model_selection: Annotated[
        bool,
        typer.Option(help="Select the generator checkpoint by validation F1 (never the test set)"),
    ] = True,
    search: Annotated[
        list[float] | None,
        typer.Option(
            "--search-guidance",
            help="Guidance scales to search by validation F1 (repeat the option)",
        ),
    ] = None,
    search_budget: Annotated[
        int | None,
        typer.Option(
            "--search-budget", min=1, help="Most settings tried (default: every --search-guidance)"
        ),
    ] = None,
    include_sensitive: Annotated[
        bool, typer.Option(help="Use the sensitive attribute as a model input (all arms)")
    ] = True,
    generator: Annotated[
        str, typer.Option("--generator", help="diffusion, or empirical (a fast test double)")
    ] = "diffusion",
    keep_fraction: Annotated[float, typer.Option(help="Share of female training rows kept")] = 0.1,
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy",
            help="Resampling strategy of every resampling arm: auto (fill every stratum to the "
            "largest), equalize-groups (groups to the largest, each keeps its outcome "
            "prevalence) or a ratio in (0, 1]",
        ),
    ] = "auto",
    min_group_size: Annotated[
        int, typer.Option("--min-group-size", min=1, help="Fewest rows behind a group rate")
    ] = 10,
    plots: Annotated[bool, typer.Option(help="Write plots")] = True,
    quality: Annotated[
        str,
        typer.Option(
            help="Quality section (fidelity, privacy of synthetic rows): full (C2ST by gradient "
            "boosting), fast (logistic regression, no pairwise associations) or none"
        ),
    ] = "full",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing --out")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the MCRAGE paper's experiment (balanced control, 10% female, six arms) over seeds."""
    from equisynth.evaluation.backends import resolve_backend

    run = start_run("experiment mcrage", locals())
    from equisynth.evaluation.datasets import load_patient_treatment
    from equisynth.evaluation.protocols import MCRAGE_ARMS, MCRAGEProtocol
    from equisynth.evaluation.runner import run_experiment

    configure_logging(verbose)
    resolve_backend(backend)
    arm_list = parse_arms(arms, MCRAGE_ARMS)
    check_out(out, overwrite)
    ds = load_patient_treatment(data)
    protocol = MCRAGEProtocol(
        data=ds.frame,
        target=ds.target,
        positive=ds.positive,
        sensitive=list(ds.sensitive),
        arms=arm_list,
        classifier=classifier,
        include_sensitive=include_sensitive,
        generator=generator,
        generator_params={"n_iter": n_iter},
        model_selection=model_selection,
        eval_every=eval_every,
        param_grid={"guidance_scale": list(search)} if search else None,
        search_budget=search_budget or (len(search) if search else 1),
        keep_fraction=keep_fraction,
        min_group_size=min_group_size,
        sampling_strategy=parse_strategy(strategy),
    )
    result = run_experiment(protocol, seeds=seeds, n_jobs=jobs, verbose=verbose, backend=backend)
    finish(
        result,
        out,
        overwrite=overwrite,
        plots=plots,
        quality=quality_options(quality),
        title="MCRAGE experiment",
        protocol=protocol,
    )
    run.write(out, inputs=[data])


#: The ``experiment`` command group; other experiments add their command to it.
experiment_app = typer.Typer(
    help="Reproduce published experiments over many seeds.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
experiment_app.command("mcrage")(mcrage_command)


def _register_fairsynth() -> None:
    from equisynth.cli.experiment_fairsynth import fairsynth_command

    experiment_app.command("fairsynth")(fairsynth_command)


_register_fairsynth()


def register(app: typer.Typer) -> None:
    """Add the ``experiment`` command group (``mcrage``, ``fairsynth``) to ``app``."""
    app.add_typer(experiment_app, name="experiment")
