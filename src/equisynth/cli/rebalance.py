"""``equisynth rebalance``: add synthetic rows for under-represented strata of a table."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
import typer

from equisynth.cli._common import (
    check_columns,
    handle_errors,
    parse_strategy,
    setup_logging,
    stratum_summary,
)
from equisynth.cli._copies import check_drop_copies_option, drop_near_copies, guard_copies
from equisynth.exceptions import DataError
from equisynth.io import check_output_path, read_table, table_format, write_table
from equisynth.manifest import start_run

__all__ = ["rebalance_command", "register", "run_rebalance"]

logger = logging.getLogger(__name__)


def run_rebalance(
    df: pd.DataFrame,
    *,
    target: str,
    sensitive: list[str],
    method: Literal["mcrage", "smote", "random"] = "mcrage",
    strategy: str | float = "auto",
    seed: int | None = None,
    n_iter: int | None = None,
    smote_first: bool = False,
    device: str = "cpu",
    verbose: bool = True,
    drop_copies: bool = False,
    drop_closer_than: float | None = None,
) -> pd.DataFrame:
    """Input rows unchanged and first, then synthetic rows, with a boolean ``is_synthetic``.

    Synthetic rows that exactly copy a real row are reported with a warning and removed when
    ``drop_copies``; with ``drop_closer_than=D`` every synthetic row within distance ``D`` of a
    real row is removed (see :mod:`equisynth.cli._copies`).
    """
    from equisynth.resampling import make_resampler, validate_resampling_input

    if "is_synthetic" in df.columns:  # it would be overwritten by the flag added below
        raise DataError(
            "the input already has a column 'is_synthetic', the flag rebalance adds; rename or "
            "drop it (for an earlier rebalance output: keep its rows where it is False, drop it)"
        )
    X = df.drop(columns=[target])
    validate_resampling_input(X, df[target], sensitive, target_name=target)
    kwargs: dict = {
        "sensitive_features": sensitive,
        "sampling_strategy": strategy,
        "random_state": seed,
    }
    if method == "mcrage":
        from equisynth.generators.tabular import TabularDiffusionGenerator

        params = {"device": device, "random_state": seed, "verbose": verbose}
        if n_iter is not None:
            params["n_iter"] = n_iter
        kwargs["generator"] = TabularDiffusionGenerator(**params)
        kwargs["verbose"] = verbose
        kwargs["smote_first"] = smote_first
    elif smote_first:
        from equisynth.exceptions import ConfigError

        raise ConfigError(f"--smote-first needs --method mcrage, got --method {method}")
    sampler = make_resampler(method, **kwargs)
    X_res, y_res = sampler.fit_resample(X, df[target])
    mask = pd.Series(sampler.synthetic_mask_, index=X_res.index).to_numpy(dtype=bool)
    synth = X_res.loc[mask].copy()
    synth[target] = pd.Series(y_res).to_numpy()[mask]
    synth = synth[list(df.columns)].astype(df.dtypes.to_dict(), errors="ignore")
    if drop_closer_than is not None:  # includes the exact copies (distance 0)
        synth = drop_near_copies(df, synth, drop_closer_than)
    else:
        synth = guard_copies(df, synth, drop=drop_copies, method=method)
    real = df.copy()
    real["is_synthetic"] = False
    synth["is_synthetic"] = True
    return pd.concat([real, synth], ignore_index=True)


@handle_errors
def rebalance_command(
    input: Annotated[Path, typer.Argument(help="Input table (.csv, .csv.gz, .tsv, .parquet)")],
    target: Annotated[str, typer.Option("--target", help="Outcome column")],
    sensitive: Annotated[
        list[str], typer.Option("--sensitive", help="Sensitive column (repeat for several)")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output table (.csv or .parquet)")],
    method: Annotated[
        str, typer.Option("--method", help="mcrage (diffusion), smote or random")
    ] = "mcrage",
    strategy: Annotated[
        str, typer.Option("--strategy", help="auto, equalize-groups or a ratio in (0, 1]")
    ] = "auto",
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed")] = None,
    n_iter: Annotated[
        int | None,
        typer.Option("--n-iter", min=1, help="Generator training steps (default: the generator's)"),
    ] = None,
    smote_first: Annotated[
        bool,
        typer.Option(
            "--smote-first",
            help="mcrage only: train the generator on SMOTE-augmented strata (paper's variant)",
        ),
    ] = False,
    numeric: Annotated[
        list[str] | None,
        typer.Option("--numeric", help="Column that must be numeric (text in it is an error)"),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda")] = "cpu",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output")
    ] = False,
    drop_copies: Annotated[
        bool,
        typer.Option("--drop-copies", help="Remove synthetic rows that exactly copy a real row"),
    ] = False,
    drop_closer_than: Annotated[
        float | None,
        typer.Option(
            "--drop-closer-than",
            help="Remove synthetic rows within this distance of a real row (robust-scaled "
            "numeric, one-hot categorical; e.g. the dcr_holdout_p05 that equisynth quality "
            "reports); exact copies included",
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars or summary")
    ] = False,
) -> None:
    """Write all input rows, then synthetic rows, with a boolean column is_synthetic."""
    run = start_run("rebalance", locals())
    seed = run.seed
    setup_logging(quiet)
    check_drop_copies_option(method, drop_copies, drop_closer_than)
    if method not in ("mcrage", "smote", "random"):
        raise typer.BadParameter(
            f"expected mcrage, smote or random, got {method!r}", param_hint="--method"
        )
    if device not in ("cpu", "cuda"):
        raise typer.BadParameter(f"expected cpu or cuda, got {device!r}", param_hint="--device")
    table_format(out)
    if out.exists() and not overwrite:
        from equisynth.exceptions import OutputExistsError

        raise OutputExistsError(f"output '{out}' exists; pass --overwrite or choose another path")
    check_output_path(out, overwrite=overwrite)
    strat = parse_strategy(strategy)
    df = read_table(input)
    check_columns(df, target=target, sensitive=sensitive, numeric=numeric or [], source=str(input))
    result = run_rebalance(
        df,
        target=target,
        sensitive=list(sensitive),
        method=method,
        strategy=strat,
        seed=seed,
        n_iter=n_iter,
        smote_first=smote_first,
        device=device,
        verbose=not quiet,
        drop_copies=drop_copies,
        drop_closer_than=drop_closer_than,
    )
    write_table(result, out, overwrite=overwrite)
    run.write(out, inputs=[input])
    if not quiet:
        synth = result[result["is_synthetic"]]
        typer.echo(stratum_summary(df, synth, [target, *sensitive]), err=True)
        typer.echo(f"wrote {len(df)} real + {len(synth)} synthetic rows to {out}", err=True)


def register(app: typer.Typer) -> None:
    app.command("rebalance")(rebalance_command)
