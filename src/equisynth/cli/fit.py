"""``equisynth fit``: train the conditional generator on (target x sensitive) strata and save it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from equisynth.cli._common import check_columns, handle_errors, setup_logging
from equisynth.exceptions import OutputExistsError
from equisynth.io import atomic_output_dir, check_output_path, read_table
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
    n_iter: Annotated[int, typer.Option("--n-iter", min=1, help="Training steps")] = 3000,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed")] = None,
    numeric: Annotated[
        list[str] | None,
        typer.Option("--numeric", help="Column that must be numeric (text in it is an error)"),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda")] = "cpu",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing model")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars")] = False,
) -> None:
    """Train the conditional diffusion generator and save it as a model directory."""
    run = start_run("fit", locals())
    seed = run.seed
    setup_logging(quiet)
    if device not in ("cpu", "cuda"):
        raise typer.BadParameter(f"expected cpu or cuda, got {device!r}", param_hint="--device")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"output '{out}' exists; pass --overwrite or choose another path")
    check_output_path(out, overwrite=overwrite, marker="config.json")
    df = read_table(input)
    check_columns(df, target=target, sensitive=sensitive, numeric=numeric or [], source=str(input))
    from equisynth.resampling import validate_resampling_input

    validate_resampling_input(df.drop(columns=[target]), df[target], sensitive, target_name=target)
    from equisynth.generators.tabular import TabularDiffusionGenerator

    gen = TabularDiffusionGenerator(
        n_iter=n_iter, device=device, random_state=seed, verbose=not quiet
    )
    gen.fit(df, condition_on=[target, *sensitive])
    with atomic_output_dir(out, overwrite=overwrite, marker="config.json") as tmp:
        gen.save(tmp / "model", overwrite=True)
        for item in (tmp / "model").iterdir():
            item.rename(tmp / item.name)
        (tmp / "model").rmdir()
        run.write(out, inputs=[input], extra={"generator": gen.get_params()}, into=tmp)
    if not quiet:
        typer.echo(f"saved model to {out}", err=True)


def register(app: typer.Typer) -> None:
    app.command("fit")(fit_command)
