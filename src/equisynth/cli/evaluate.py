"""``equisynth evaluate``: the generic protocol on any table (CSV or Parquet)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from equisynth.cli._common import parse_strategy
from equisynth.cli.experiment import (
    DEFAULT_N_ITER,
    check_out,
    configure_logging,
    finish,
    handle_errors,
    parse_arms,
    quality_options,
)
from equisynth.manifest import start_run

__all__ = ["evaluate_command", "register"]


@handle_errors
def evaluate_command(
    data: Annotated[Path, typer.Argument(help="Input table (.csv, .csv.gz or .parquet)")],
    target: Annotated[str, typer.Option("--target", help="Binary outcome column")],
    sensitive: Annotated[
        list[str], typer.Option("--sensitive", help="Sensitive column (repeat for several)")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output directory")],
    positive: Annotated[
        str | None,
        typer.Option(
            "--positive", help="Positive class of --target (default: 1/True/the rarer class)"
        ),
    ] = None,
    arms: Annotated[
        list[str] | None,
        typer.Option("--arms", help="Arms to run (comma-separated or repeated); default all"),
    ] = None,
    classifier: Annotated[str, typer.Option("--classifier", help="rf, lr or hgb")] = "rf",
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Number of seeds")] = 10,
    jobs: Annotated[int, typer.Option("--jobs", help="Parallel seeds (-1: all cores)")] = 1,
    group_col: Annotated[
        str | None,
        typer.Option("--group-col", help="Patient id: a patient's rows never straddle train/test"),
    ] = None,
    drop: Annotated[
        list[str] | None, typer.Option("--drop", help="Column to leave out of the model inputs")
    ] = None,
    test_size: Annotated[
        float, typer.Option(help="Share of rows (or patients) in the test set")
    ] = 0.2,
    n_iter: Annotated[int, typer.Option("--n-iter", min=1, help="Generator training steps")] = (
        DEFAULT_N_ITER
    ),
    model_selection: Annotated[
        bool, typer.Option(help="Select the generator checkpoint by validation F1")
    ] = True,
    include_sensitive: Annotated[
        bool, typer.Option(help="Use the sensitive attributes as model inputs (all arms)")
    ] = True,
    generator: Annotated[
        str, typer.Option("--generator", help="diffusion, or empirical (a fast test double)")
    ] = "diffusion",
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
            help="Quality section (fidelity, privacy of synthetic rows): full, fast or none"
        ),
    ] = "full",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing --out")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Evaluate rebalancing arms on any table: same model, same features, same test set."""
    run = start_run("evaluate", locals())
    from equisynth.evaluation.datasets import read_table, resolve_positive
    from equisynth.evaluation.protocols import GENERIC_ARMS, GenericProtocol
    from equisynth.evaluation.runner import run_experiment

    configure_logging(verbose)
    arm_list = parse_arms(arms, GENERIC_ARMS)
    check_out(out, overwrite)
    df = read_table(data)
    protocol = GenericProtocol(
        data=df,
        target=target,
        positive=resolve_positive(df, target, positive),
        sensitive=list(sensitive),
        arms=arm_list,
        classifier=classifier,
        include_sensitive=include_sensitive,
        test_size=test_size,
        generator=generator,
        generator_params={"n_iter": n_iter},
        model_selection=model_selection,
        group_col=group_col,
        exclude_columns=tuple(drop or ()),
        min_group_size=min_group_size,
        sampling_strategy=parse_strategy(strategy),
    )
    result = run_experiment(protocol, seeds=seeds, n_jobs=jobs, verbose=verbose)
    finish(
        result,
        out,
        overwrite=overwrite,
        plots=plots,
        quality=quality_options(quality),
        title=f"equisynth evaluate {data.name}",
        protocol=protocol,
    )
    run.write(out, inputs=[data])


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command to ``app``."""
    app.command("evaluate")(evaluate_command)
