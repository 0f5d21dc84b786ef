"""``equisynth sample``: draw rows from a saved model, for one stratum or to fill a table's deficits."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from equisynth.cli._common import (
    check_columns,
    compute_deficits,
    handle_errors,
    parse_strategy,
    setup_logging,
)
from equisynth.exceptions import ConfigError, OutputExistsError
from equisynth.io import check_output_path, read_table, table_format, write_table
from equisynth.manifest import start_run

__all__ = ["register", "sample_command"]


def _parse_conditions(items: list[str], gen) -> dict:
    """``COL=VALUE`` strings -> {column: training level}, matching levels by their text."""
    keys = list(gen.condition_on_)
    levels = getattr(gen.strata_, "levels_", None)
    out = {}
    for item in items:
        col, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--condition must look like COL=VALUE, got {item!r}")
        if col not in keys:
            raise ConfigError(
                f"--condition column '{col}' is not a condition of this model; "
                f"expected one of {', '.join(keys)}"
            )
        if levels is not None:
            known = list(levels[keys.index(col)])
            matches = [lv for lv in known if str(lv) == value]
            if not matches:
                raise ConfigError(
                    f"--condition {col}={value}: value not seen in training; expected one of "
                    f"{', '.join(map(str, known))}"
                )
            out[col] = matches[0]
        else:
            out[col] = value
    missing = [c for c in keys if c not in out]
    if missing:
        raise ConfigError(
            f"--condition must give a value for every condition column; missing: {', '.join(missing)}"
        )
    return out


@handle_errors
def sample_command(
    model: Annotated[Path, typer.Argument(help="Model directory written by `equisynth fit`")],
    out: Annotated[Path, typer.Option("--out", help="Output table (.csv or .parquet)")],
    n: Annotated[int | None, typer.Option("--n", min=1, help="Number of rows to draw")] = None,
    condition: Annotated[
        list[str] | None, typer.Option("--condition", help="COL=VALUE (repeat for every condition)")
    ] = None,
    fill: Annotated[
        Path | None, typer.Option("--fill", help="Table whose strata deficits to fill")
    ] = None,
    strategy: Annotated[
        str, typer.Option("--strategy", help="With --fill: auto, equalize-groups or a ratio")
    ] = "auto",
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed")] = None,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda")] = "cpu",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary")] = False,
) -> None:
    """Draw synthetic rows: --n N [--condition COL=VALUE ...], or --fill INPUT."""
    run = start_run("sample", locals(), resolve_seed=False)  # no seed: the model's own
    setup_logging(quiet)
    if (n is None) == (fill is None):
        raise typer.BadParameter("give exactly one of --n or --fill", param_hint="--n/--fill")
    table_format(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"output '{out}' exists; pass --overwrite or choose another path")
    check_output_path(out, overwrite=overwrite)
    from equisynth.generators.tabular import TabularDiffusionGenerator

    gen = TabularDiffusionGenerator.load(model, device=device)
    gen.set_params(verbose=not quiet)
    keys = list(gen.condition_on_)
    if fill is not None:
        df = read_table(fill)
        check_columns(df, target=None, sensitive=keys, source=str(fill))
        need = compute_deficits(df, keys, parse_strategy(strategy))
        conditions = need.loc[need.index.repeat(need["n"]), keys].reset_index(drop=True)
        if conditions.empty:
            logging.getLogger(__name__).warning(
                "no stratum of %s is below the --strategy target: writing an empty table", fill
            )
        result = gen.sample(conditions, random_state=seed)
    elif condition:
        values = _parse_conditions(condition, gen)
        result = gen.sample(pd.DataFrame([values] * n), random_state=seed)
    else:
        result = gen.sample(n=n, random_state=seed)
    write_table(result, out, overwrite=overwrite)
    run.write(out, inputs=[model, fill])
    if not quiet:
        typer.echo(f"wrote {len(result)} synthetic rows to {out}", err=True)


def register(app: typer.Typer) -> None:
    app.command("sample")(sample_command)
