"""``equisynth fit``: train the conditional generator on (target x sensitive) strata and save it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from equisynth.cli._common import (
    CheckpointDirOption,
    CheckpointEveryOption,
    ResumeOption,
    check_columns,
    handle_errors,
    setup_logging,
)
from equisynth.exceptions import ConfigError, OutputExistsError, TrainingInterrupted
from equisynth.io import atomic_output_dir, check_output_path, read_table, table_format
from equisynth.manifest import start_run

__all__ = ["fit_command", "register"]


@handle_errors
def fit_command(
    input: Annotated[Path, typer.Argument(help="Training table (.csv, .csv.gz, .tsv, .parquet)")],
    target: Annotated[str, typer.Option("--target", help="Outcome column")],
    sensitive: Annotated[
        list[str], typer.Option("--sensitive", help="Sensitive column (repeat for several)")
    ],
    out: Annotated[Path, typer.Option("--out", help="Model directory to create")],
    n_iter: Annotated[
        int | None,
        typer.Option("--n-iter", min=1, help="Training steps (default: the generator's)"),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed")] = None,
    numeric: Annotated[
        list[str] | None,
        typer.Option("--numeric", help="Column that must be numeric (text in it is an error)"),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda")] = "cpu",
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", min=1, help="Rows per training step and process (torchrun: per rank)"
        ),
    ] = 1024,
    checkpoint_dir: CheckpointDirOption = None,
    checkpoint_every: CheckpointEveryOption = None,
    resume: ResumeOption = False,
    streaming: Annotated[
        bool,
        typer.Option(
            "--streaming", help="Read a .parquet input in batches (memory bounded in rows)"
        ),
    ] = False,
    batch_rows: Annotated[
        int, typer.Option("--batch-rows", min=1, help="Rows read at a time with --streaming")
    ] = 65_536,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing model")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars")] = False,
) -> None:
    """Train the conditional diffusion generator and save it as a model directory.

    Under torchrun (torchrun --nproc_per_node N -m equisynth fit ...) it trains with
    DistributedDataParallel (NCCL on GPUs, gloo on CPUs); rank 0 writes the model.
    """
    from equisynth.diffusion.distributed import broadcast_ints, env_world_size, init_distributed

    run = start_run("fit", locals())
    if device not in ("cpu", "cuda"):
        raise typer.BadParameter(f"expected cpu or cuda, got {device!r}", param_hint="--device")
    if (checkpoint_every is not None or resume) and checkpoint_dir is None:
        raise ConfigError("--checkpoint-every and --resume need --checkpoint-dir DIR")
    if streaming and table_format(input) != "parquet":
        raise ConfigError(
            f"--streaming reads Parquet, got '{input}'; convert it once "
            "(e.g. pandas: pd.read_csv(path).to_parquet('table.parquet')) or drop --streaming"
        )
    if streaming and numeric:
        raise ConfigError(
            "--numeric converts text columns of CSV files; with --streaming store those columns "
            "as numbers in the Parquet file instead"
        )
    ctx = init_distributed(device) if env_world_size() > 1 else None
    main = ctx is None or ctx.is_main
    # every rank must draw the same global batches: they all use rank 0's (possibly drawn) seed
    seed = run.seed if ctx is None else broadcast_ints([run.seed], ctx)[0]
    run.seed = run.config["seed"] = seed
    quiet = quiet or not main
    setup_logging(quiet)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"output '{out}' exists; pass --overwrite or choose another path")
    check_output_path(out, overwrite=overwrite, marker="config.json")
    from equisynth.generators.tabular import TabularDiffusionGenerator

    params = {
        "batch_size": batch_size,
        "device": device,
        "random_state": seed,
        "verbose": not quiet,
    }
    if n_iter is not None:
        params["n_iter"] = n_iter
    gen = TabularDiffusionGenerator(**params)
    condition_on = [target, *sensitive]
    ckpt = {
        "checkpoint_dir": checkpoint_dir,
        "checkpoint_every": checkpoint_every,
        "resume": resume,
    }
    try:
        if streaming:
            gen.fit_parquet(input, condition_on=condition_on, batch_rows=batch_rows, **ckpt)
        else:
            df = read_table(input)
            check_columns(
                df, target=target, sensitive=sensitive, numeric=numeric or [], source=str(input)
            )
            from equisynth.resampling import validate_resampling_input

            validate_resampling_input(
                df.drop(columns=[target]), df[target], sensitive, target_name=target
            )
            gen.fit(df, condition_on=condition_on, **ckpt)
    except TrainingInterrupted as exc:
        if main:
            typer.echo(
                f"interrupted at step {exc.step}: checkpoint saved to {exc.checkpoint}; "
                "run the same command with --resume to continue",
                err=True,
            )
        raise typer.Exit(code=128 + (exc.signum or 2)) from None
    if main:
        with atomic_output_dir(out, overwrite=overwrite, marker="config.json") as tmp:
            gen.save(tmp / "model", overwrite=True)
            for item in (tmp / "model").iterdir():
                item.rename(tmp / item.name)
            (tmp / "model").rmdir()
            run.write(out, inputs=[input], extra={"generator": gen.get_params()}, into=tmp)
        if not quiet:
            typer.echo(f"saved model to {out}", err=True)
    if ctx is not None:
        from equisynth.diffusion.distributed import barrier, shutdown_distributed

        barrier(ctx)
        shutdown_distributed()


def register(app: typer.Typer) -> None:
    app.command("fit")(fit_command)
