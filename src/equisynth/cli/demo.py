"""``equisynth demo``: the whole pipeline on a real clinical table that ships with lifelines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from equisynth.cli.experiment import configure_logging, finish, handle_errors
from equisynth.manifest import start_run

__all__ = ["demo_command", "register"]

DEMO_ARMS = ("real", "random_oversample", "smote", "mcrage")


@handle_errors
def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Output directory")] = Path("demo-out"),
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Number of seeds")] = 3,
    jobs: Annotated[int, typer.Option("--jobs", help="Parallel seeds (-1: all cores)")] = -1,
    n_iter: Annotated[int, typer.Option("--n-iter", min=1, help="Generator training steps")] = 600,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing --out")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Rebalance lifelines' kidney-transplant cohort (race x sex x death) and report the effect."""
    run = start_run("demo", locals())
    from equisynth.evaluation.datasets import load_kidney_transplant
    from equisynth.evaluation.protocols import GenericProtocol
    from equisynth.evaluation.runner import run_experiment

    configure_logging(verbose)
    ds = load_kidney_transplant()
    typer.echo(f"demo data: {ds.source}; {len(ds.frame)} patients")
    protocol = GenericProtocol(
        data=ds.frame,
        target=ds.target,
        positive=ds.positive,
        sensitive=list(ds.sensitive),
        arms=list(DEMO_ARMS),
        classifier="lr",
        generator_params={"n_iter": n_iter, "batch_size": 256, "hidden": (128, 128)},
        model_selection=False,
        test_size=0.3,
    )
    result = run_experiment(protocol, seeds=seeds, n_jobs=jobs, verbose=verbose)
    finish(result, out, overwrite=overwrite, plots=True, title="equisynth demo", protocol=protocol)
    run.write(out)


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""
    app.command("demo")(demo_command)
