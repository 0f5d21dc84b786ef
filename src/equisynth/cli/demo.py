"""``equisynth demo``: the whole pipeline on real trial data that ships with lifelines (ACTG 175)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from equisynth.cli.experiment import (
    check_out,
    configure_logging,
    finish,
    handle_errors,
    quality_options,
)
from equisynth.manifest import start_run

__all__ = ["DEMO_ARMS", "demo_command", "register"]

DEMO_ARMS = ("real", "random_oversample", "smote", "mcrage")


@handle_errors
def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Output directory")] = Path("demo-out"),
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Number of seeds")] = 4,
    jobs: Annotated[int, typer.Option("--jobs", help="Parallel seeds (-1: all cores)")] = -1,
    n_iter: Annotated[
        int, typer.Option("--n-iter", min=1, help="Generator training steps (small: time budget)")
    ] = 800,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing --out")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Rebalance ACTG 175 (race x gender x outcome) over a few seeds and write the report.

    Data: the AIDS Clinical Trials Group study 175 table shipped with lifelines (2,139
    patients); outcome ``cens``; baseline columns only (the follow-up time ``days`` and the
    post-baseline measurements are dropped because they leak the outcome).
    """
    run = start_run("demo", locals())
    from equisynth.evaluation.datasets import load_actg175
    from equisynth.evaluation.protocols import GenericProtocol
    from equisynth.evaluation.runner import run_experiment

    configure_logging(verbose)
    check_out(out, overwrite)
    ds = load_actg175()
    typer.echo(f"demo data: {ds.source}; {len(ds.frame)} patients")
    protocol = GenericProtocol(
        data=ds.frame,
        target=ds.target,
        positive=ds.positive,
        sensitive=list(ds.sensitive),
        arms=list(DEMO_ARMS),
        classifier="lr",
        # A small, short generator run keeps the demo within its time budget (3 minutes on 2
        # cores); the experiments use the generator's own settings.
        generator_params={"n_iter": n_iter, "batch_size": 256, "hidden": (128, 128)},
        model_selection=False,
        test_size=0.3,
        min_group_size=5,
    )
    result = run_experiment(protocol, seeds=seeds, n_jobs=jobs, verbose=verbose)
    finish(
        result,
        out,
        overwrite=overwrite,
        plots=True,
        quality=quality_options("fast"),
        title="equisynth demo: ACTG 175, strata race x gender x outcome",
        protocol=protocol,
    )
    run.write(out)


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""
    app.command("demo")(demo_command)
