"""``equisynth quality``: fidelity (and privacy) of a synthetic table against a real one.

Register on the main app with :func:`register`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from equisynth.cli._common import handle_errors
from equisynth.cli.experiment import configure_logging
from equisynth.exceptions import ConfigError, DataError, OutputExistsError
from equisynth.manifest import start_run

__all__ = ["quality_command", "register"]


@handle_errors
def quality_command(
    real: Annotated[Path, typer.Option("--real", help="Real table (.csv, .csv.gz or .parquet)")],
    synthetic: Annotated[Path, typer.Option("--synthetic", help="Synthetic table, same columns")],
    out: Annotated[Path, typer.Option("--out", help="Output directory")],
    strata: Annotated[
        list[str] | None,
        typer.Option("--strata", help="Column defining strata (repeat for intersections)"),
    ] = None,
    holdout: Annotated[
        Path | None,
        typer.Option(
            "--holdout",
            help="Real rows the generator never saw: enables privacy metrics "
            "(--real is then the generator's training table)",
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Outcome column: adds train-synthetic-test-real")
    ] = None,
    classifier: Annotated[
        str, typer.Option("--classifier", help="C2ST classifier: hgb or lr")
    ] = "hgb",
    drop_synthetic_flag: Annotated[
        bool,
        typer.Option(
            "--only-synthetic-rows/--all-rows",
            help="If the synthetic file has an is_synthetic column, keep only rows marked True",
        ),
    ] = True,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed")] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing --out")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Compare a synthetic table with a real one; write quality.csv, quality.md and plots."""
    run = start_run("quality", locals())
    from equisynth.evaluation.datasets import read_table
    from equisynth.evaluation.quality import fidelity_report, privacy_report, write_quality_outputs

    configure_logging(verbose)
    if classifier not in ("hgb", "lr"):
        raise ConfigError(f"--classifier must be hgb or lr, got {classifier!r}")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"output {str(out)!r} exists; pass --overwrite to replace it")
    real_df = read_table(real)
    synth_df = read_table(synthetic)
    if drop_synthetic_flag and "is_synthetic" in synth_df.columns:
        synth_df = synth_df[synth_df["is_synthetic"].astype(bool)]
        if synth_df.empty:
            raise DataError(f"{str(synthetic)!r} has an is_synthetic column but no row marked True")
    real_df = real_df.drop(columns=["is_synthetic"], errors="ignore")
    missing = [c for c in real_df.columns if c not in synth_df.columns]
    if missing:
        raise DataError(
            f"the synthetic table {str(synthetic)!r} lacks column(s) {missing} of the real table"
        )
    for col in [*(strata or []), *([target] if target else [])]:
        if col not in real_df.columns:
            raise DataError(
                f"column {col!r} is not in the real table; available: {list(real_df.columns)}"
            )
    synth_df = synth_df[list(real_df.columns)]
    frames = {
        "fidelity": fidelity_report(
            real_df,
            synth_df,
            strata=strata,
            target=target,
            classifier=classifier,
            random_state=seed,
        )
    }
    if holdout is not None:
        hold_df = read_table(holdout).drop(columns=["is_synthetic"], errors="ignore")
        frames["privacy"] = privacy_report(
            real_df, synth_df, hold_df, strata=list(strata or []) or None, random_state=seed
        )
    paths = write_quality_outputs(frames, out, overwrite=overwrite)
    run.write(out, inputs=[real, synthetic, holdout])
    overall = frames["fidelity"].query("stratum == 'all' and column == ''").set_index("metric")
    typer.echo(
        f"C2ST AUC {overall.loc['c2st_auc', 'value']:.3f} (0.5 = indistinguishable), "
        f"mean column distance {overall.loc['mean_column_distance', 'value']:.3f}"
    )
    if "privacy" in frames:
        priv = frames["privacy"].set_index("metric")["value"]
        typer.echo(
            f"DCR ratio {priv['dcr_ratio']:.3f} (about 1 = fine), exact copies "
            f"{priv['exact_copy_rate']:.3f}, MIA AUC {priv['mia_auc']:.3f}"
        )
    typer.echo(f"wrote {len(paths)} file(s) to {out}: " + ", ".join(p.name for p in paths.values()))


def register(app: typer.Typer) -> None:
    """Add the ``quality`` command to ``app``."""
    app.command("quality")(quality_command)
