"""Shared pieces of the CLI commands: error handling, logging, input checks, summaries."""

from __future__ import annotations

import functools
import logging
import math
import os
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from equisynth.exceptions import ConfigError, DataError, EquisynthError, SchemaError

__all__ = [
    "check_columns",
    "compute_deficits",
    "handle_errors",
    "parse_strategy",
    "setup_logging",
    "stratum_summary",
]


#: Checkpoint options shared by the training commands (``fit``, ``fit-ehr``).
CheckpointDirOption = Annotated[
    Path | None,
    typer.Option("--checkpoint-dir", help="Save training checkpoints in this directory"),
]
CheckpointEveryOption = Annotated[
    int | None,
    typer.Option("--checkpoint-every", min=1, help="Checkpoint period in training steps"),
]
ResumeOption = Annotated[
    bool,
    typer.Option("--resume", help="Continue from the newest checkpoint in --checkpoint-dir"),
]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    typer.echo(f"warning: {_one_line(message)}", err=True)


def handle_errors(func: Callable) -> Callable:
    """Map errors to one line on stderr: user errors exit 2, unexpected ones exit 1.

    Set ``EQUISYNTH_DEBUG=1`` to see the traceback of an unexpected error.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings():
                # Python warnings (a stratum with very few rows, a column with many levels) as
                # one "warning: ..." line each, also with --quiet: they are about the data
                warnings.showwarning = _show_warning
                return func(*args, **kwargs)
        except (
            typer.Exit,
            typer.Abort,
            SystemExit,
            typer.BadParameter,
            typer.exceptions.TyperException,
        ):
            raise
        except EquisynthError as exc:
            typer.echo(f"error: {_one_line(exc)}", err=True)
            raise typer.Exit(code=2) from None
        except OSError as exc:
            typer.echo(f"error: {_one_line(exc)}", err=True)
            raise typer.Exit(code=2) from None
        except Exception as exc:
            if os.environ.get("EQUISYNTH_DEBUG") == "1":
                traceback.print_exc()
            typer.echo(
                f"error: internal error ({type(exc).__name__}: {_one_line(exc)}); rerun with "
                "EQUISYNTH_DEBUG=1 to see the traceback and report it",
                err=True,
            )
            raise typer.Exit(code=1) from None

    return wrapper


def setup_logging(quiet: bool) -> None:
    """INFO logging to stderr unless ``quiet`` (warnings are always shown)."""
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO, format="%(levelname)s: %(message)s"
    )


def check_columns(
    df: pd.DataFrame,
    *,
    target: str | None,
    sensitive: Sequence[str],
    numeric: Sequence[str] = (),
    source: str = "input",
) -> None:
    """Early checks with messages that name the column: presence, all-missing, text in numeric."""
    wanted = ([target] if target is not None else []) + list(sensitive) + list(numeric)
    for col in wanted:
        if col not in df.columns:
            raise DataError(
                f"column '{col}' is not in {source}; available columns: {', '.join(map(str, df.columns))}"
            )
    for col in df.columns:
        if df[col].isna().all():
            raise SchemaError(
                f"column '{col}' has only missing values; drop it from {source} before running"
            )
    declared = set(numeric)
    for col in df.columns:
        if col in declared or col == target or col in sensitive:
            continue
        values = df[col]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        present = values.dropna()
        converted = pd.to_numeric(present, errors="coerce")
        n_text = int(converted.isna().sum())
        if len(present) and 0 < n_text <= 0.5 * len(present):
            example = present[converted.isna()].iloc[0]
            warnings.warn(
                f"column '{col}' is mostly numeric but has {n_text} text value(s) such as "
                f"{example!r}; it is treated as categorical. If it is numeric, fix those "
                f"values and pass --numeric {col} to check it",
                UserWarning,
                stacklevel=2,
            )
    for col in numeric:
        values = df[col]
        converted = pd.to_numeric(values, errors="coerce")
        bad = values[converted.isna() & values.notna()]
        if len(bad):
            raise SchemaError(
                f"column '{col}' was declared numeric (--numeric) but has {len(bad)} non-numeric "
                f"value(s), e.g. {bad.iloc[0]!r} in row {bad.index[0] + 2} of the file; fix or blank them"
            )
        df[col] = converted


def parse_strategy(value: str) -> str | float:
    """``auto``, ``equalize-groups`` or a float ratio in (0, 1]."""
    if value in ("auto", "fill-to-max", "equalize-groups"):
        return value
    try:
        ratio = float(value)
    except ValueError:
        raise ConfigError(
            f"--strategy must be 'auto', 'equalize-groups' or a number in (0, 1], got {value!r}"
        ) from None
    if not (0 < ratio <= 1) or math.isnan(ratio):
        raise ConfigError(f"--strategy ratio must be in (0, 1], got {value}")
    return ratio


def stratum_summary(before: pd.DataFrame, added: pd.DataFrame, keys: Sequence[str]) -> str:
    """A small text table: count before / added / after per stratum."""
    keys = list(keys)
    b = before.groupby(keys, dropna=False).size().rename("before")
    a = added.groupby(keys, dropna=False).size().rename("added") if len(added) else None
    table = b.to_frame()
    table["added"] = 0 if a is None else a.reindex(table.index).fillna(0).astype(int)
    table["after"] = table["before"] + table["added"]
    return table.reset_index().to_string(index=False)


def compute_deficits(df: pd.DataFrame, keys: Sequence[str], strategy: str | float) -> pd.DataFrame:
    """New rows per observed stratum, exactly as the resamplers count them.

    Returns a frame with the ``keys`` columns and ``n`` (rows to add, > 0 only).
    """
    from equisynth.data.strata import StrataIndex, resolve_sampling_strategy

    keys = list(keys)
    strata = StrataIndex(keys).fit(df)
    per_id = resolve_sampling_strategy(
        strategy, strata.counts(df), strata, target=keys[0], sensitive=keys[1:]
    )
    ids = [i for i, n in per_id.items() if n > 0]
    levels = strata.decode(ids).reset_index(drop=True)
    levels["n"] = [per_id[i] for i in ids]
    return levels
