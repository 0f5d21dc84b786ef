"""``equisynth fit-ehr`` / ``sample-ehr``: the longitudinal (HALO-style) EHR generator on files.

``fit-ehr`` loads a cohort (``--data synthea:PATH | mimic3:PATH | cohort:PATH``), builds a
prediction task, trains :class:`~equisynth.generators.ehr.HALOGenerator` and saves the model
directory; ``sample-ehr`` draws synthetic patients from it and writes them as a cohort
directory (Parquet) or a long event table. Same conventions as ``fit`` / ``sample``: one-line
errors with exit code 2, atomic outputs, ``--overwrite``, a manifest, torchrun support.
See ``docs/cli.md``.
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from equisynth.cli._common import (
    CheckpointDirOption,
    CheckpointEveryOption,
    ResumeOption,
    handle_errors,
    setup_logging,
)
from equisynth.data.tasks import TASKS
from equisynth.exceptions import (
    ConfigError,
    DataError,
    InputFileError,
    ModelFileError,
    OutputExistsError,
    TrainingInterrupted,
)
from equisynth.io import atomic_output_dir, check_output_path, write_table
from equisynth.manifest import start_run

__all__ = ["event_table", "fit_ehr_command", "register", "sample_ehr_command", "source_files"]

FAIRNESS = ("disparate_impact", "worst_group_tpr")
#: Columns of the long event table written by ``sample-ehr --out x.csv`` (then demographics, label).
EVENT_COLUMNS = ("patient_id", "visit", "code")
_TABLE_ENDINGS = (".csv", ".csv.gz", ".tsv", ".parquet")
_COHORT_MARKER = "cohort.json"
_COHORT_FILES = ("cohort.json", "static.parquet", "visits.parquet", "codes.parquet")
#: model kind (config.json) -> the command that reads it
_OTHER_KINDS = {"tabular-diffusion": "equisynth sample"}


def _one_of(value: str, choices, option: str) -> str:
    if value not in choices:
        raise ConfigError(f"{option} must be one of {', '.join(choices)}; got {value!r}")
    return value


def source_files(spec: str) -> list[Path]:
    """The files that :func:`~equisynth.data.loaders.load_source` reads for ``spec`` (for the
    manifest): a cohort directory's four files, or the loader's tables with its default
    vocabularies. Call it after loading (the paths exist then)."""
    from equisynth.data.loaders import MIMIC3_VOCABULARIES, load_mimic3, load_synthea
    from equisynth.data.loaders._tables import find_table

    kind, _, path = str(spec).partition(":")
    directory = Path(path.strip()).expanduser()
    kind = kind.strip().lower()
    if kind == "cohort":
        return [directory / name for name in _COHORT_FILES]
    if kind == "synthea":
        vocab = inspect.signature(load_synthea).parameters["vocabularies"].default
        names = ["patients", *vocab, "encounters"]
    else:
        vocab = inspect.signature(load_mimic3).parameters["vocabularies"].default
        names = ["ADMISSIONS", "PATIENTS", *(MIMIC3_VOCABULARIES[v][0] for v in vocab)]
    found = (find_table(directory, name, required=False) for name in names)
    return [p for p in found if p is not None]


def _check_fit_options(demographic, sensitive, fairness, fairness_lambda, device, checkpoint):
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda; got {device!r}")
    checkpoint_dir, checkpoint_every, resume = checkpoint
    if (checkpoint_every is not None or resume) and checkpoint_dir is None:
        raise ConfigError("--checkpoint-every and --resume need --checkpoint-dir DIR")
    for col in sensitive:
        if col not in demographic:
            raise ConfigError(
                f"--sensitive {col!r} is not a --demographic column; the fairness groups are "
                f"intersections of demographic columns: add --demographic {col} or drop it"
            )
    if fairness is None:
        if fairness_lambda is not None:
            raise ConfigError(
                "--fairness-lambda needs --fairness disparate_impact or worst_group_tpr"
            )
        return 0.0
    _one_of(fairness, FAIRNESS, "--fairness")
    if not sensitive:
        raise ConfigError(
            f"--fairness {fairness} needs --sensitive COL (a --demographic column whose groups "
            "the fairness loss compares)"
        )
    lam = 1.0 if fairness_lambda is None else float(fairness_lambda)
    if not math.isfinite(lam) or lam < 0:
        raise ConfigError(f"--fairness-lambda must be a finite number >= 0; got {lam}")
    return lam


def _check_labels(task) -> None:
    """The generator learns ``P(label | demographics)``: a task needs both label classes."""
    n_pos = int(task.label.sum())
    if n_pos in (0, task.n_patients):
        value = 1 if n_pos else 0
        raise DataError(
            f"task {task.task!r} gives every one of its {task.n_patients} patients label {value}; "
            "the generator needs patients with label 0 and 1: choose another --task or data "
            "with both outcomes"
        )


@handle_errors
def fit_ehr_command(
    data: Annotated[
        str,
        typer.Option(
            "--data", help="synthea:DIR (CSV export), mimic3:DIR (tables) or cohort:DIR (Parquet)"
        ),
    ],
    task: Annotated[
        str, typer.Option("--task", help="mortality_next_visit, in_visit_mortality or readmission")
    ],
    demographic: Annotated[
        list[str],
        typer.Option("--demographic", help="Static column the generator conditions on (repeat)"),
    ],
    out: Annotated[Path, typer.Option("--out", help="Model directory to create")],
    sensitive: Annotated[
        list[str] | None,
        typer.Option("--sensitive", help="Demographic column of the fairness groups (repeat)"),
    ] = None,
    fairness: Annotated[
        str | None,
        typer.Option("--fairness", help="Fairness loss: disparate_impact or worst_group_tpr"),
    ] = None,
    fairness_lambda: Annotated[
        float | None,
        typer.Option(
            "--fairness-lambda", help="Weight of the fairness loss (default 1 with --fairness)"
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Passes over the patients (default 30)")
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", min=1, help="Patients per step and process (default 64)"),
    ] = None,
    d_model: Annotated[
        int | None, typer.Option("--d-model", min=1, help="Transformer width (default 128)")
    ] = None,
    n_layers: Annotated[
        int | None, typer.Option("--n-layers", min=1, help="Transformer layers (default 2)")
    ] = None,
    n_heads: Annotated[
        int | None,
        typer.Option("--n-heads", min=1, help="Attention heads, divide --d-model (default 4)"),
    ] = None,
    max_visits: Annotated[
        int | None,
        typer.Option("--max-visits", min=1, help="Last visits kept per patient (default 20)"),
    ] = None,
    dropout: Annotated[
        float | None, typer.Option("--dropout", help="Transformer dropout (default 0.1)")
    ] = None,
    lr: Annotated[
        float | None, typer.Option("--lr", help="Adam learning rate (default 0.001)")
    ] = None,
    min_code_count: Annotated[
        int, typer.Option("--min-code-count", min=1, help="Keep codes seen in >= N patients")
    ] = 5,
    horizon_days: Annotated[
        float, typer.Option("--horizon-days", help="mortality_next_visit without a died flag")
    ] = 365.0,
    readmission_days: Annotated[
        float, typer.Option("--readmission-days", help="readmission window")
    ] = 30.0,
    window_hours: Annotated[
        float,
        typer.Option("--window-hours", help="in_visit_mortality: early codes of the last visit"),
    ] = 24.0,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed")] = None,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda")] = "cpu",
    checkpoint_dir: CheckpointDirOption = None,
    checkpoint_every: CheckpointEveryOption = None,
    resume: ResumeOption = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing model")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars")] = False,
) -> None:
    """Train the longitudinal EHR generator (HALO-style) on a task and save the model directory.

    Under torchrun (torchrun --nproc_per_node N -m equisynth fit-ehr ...) it trains with
    DistributedDataParallel (NCCL on GPUs, gloo on CPUs); rank 0 writes the model.
    """
    run = start_run("fit-ehr", locals())
    from equisynth.diffusion.distributed import broadcast_ints, env_world_size, init_distributed

    sensitive = list(sensitive or [])
    _one_of(task, TASKS, "--task")
    lam = _check_fit_options(
        demographic, sensitive, fairness, fairness_lambda, device,
        (checkpoint_dir, checkpoint_every, resume),
    )  # fmt: skip
    run.config["fairness_lambda"] = lam  # resolved: 1 with --fairness unless given
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
    from equisynth.data.loaders import load_source
    from equisynth.data.tasks import make_task
    from equisynth.generators.ehr import HALOGenerator

    cohort = load_source(data)
    inputs = source_files(data)
    seq = make_task(
        cohort, task, demographics=demographic, min_code_count=min_code_count,
        horizon_days=horizon_days, readmission_days=readmission_days, window_hours=window_hours,
    )  # fmt: skip
    _check_labels(seq)
    sizes = {
        "n_epochs": epochs, "batch_size": batch_size, "d_model": d_model, "n_layers": n_layers,
        "n_heads": n_heads, "max_visits": max_visits, "dropout": dropout, "lr": lr,
    }  # fmt: skip
    gen = HALOGenerator(
        **{k: v for k, v in sizes.items() if v is not None},
        fairness=fairness, fairness_lambda=lam, sensitive=sensitive, device=device,
        random_state=seed, verbose=not quiet,
    )  # fmt: skip
    try:
        gen.fit(
            seq, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, resume=resume
        )
    except TrainingInterrupted as exc:
        if main:
            typer.echo(
                f"interrupted at step {exc.step}: checkpoint saved to {exc.checkpoint}; "
                "run the same command with --resume to continue",
                err=True,
            )
        raise typer.Exit(code=128 + (exc.signum or 2)) from None
    if main:
        extra = {
            "generator": gen.get_params(),
            "task": {
                "name": seq.task,
                "n_patients": seq.n_patients,
                "n_codes": seq.n_codes,
                "label_prevalence": float(seq.label.mean()),
            },
            "world_size": 1 if ctx is None else ctx.world_size,
        }
        with atomic_output_dir(out, overwrite=overwrite, marker="config.json") as tmp:
            gen.save(tmp / "model", overwrite=True)
            for item in (tmp / "model").iterdir():
                item.rename(tmp / item.name)
            (tmp / "model").rmdir()
            run.write(out, inputs=inputs, extra=extra, into=tmp)
        if not quiet:
            typer.echo(
                f"saved model to {out} ({seq.n_patients} patients, {seq.n_codes} codes, "
                f"task {seq.task})",
                err=True,
            )
    if ctx is not None:
        from equisynth.diffusion.distributed import barrier, shutdown_distributed

        barrier(ctx)
        shutdown_distributed()


# ---------------------------------------------------------------------------- sample-ehr
def _load_model(model: Path, device: str):
    from equisynth.generators.ehr import HALOGenerator

    hint = "give a model directory written by `equisynth fit-ehr`"
    try:
        kind = json.loads((model / "config.json").read_text(encoding="utf-8")).get("kind")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        kind = None
    if isinstance(kind, str) and kind in _OTHER_KINDS:
        raise ModelFileError(
            f"'{model}' holds a {kind!r} model, not an EHR model: {hint} "
            f"(`{_OTHER_KINDS[kind]}` reads this one)"
        )
    try:
        return HALOGenerator.load(model, device=device)
    except ModelFileError as exc:
        damaged = any(
            w in str(exc) for w in ("checksum", "cannot read", "lacks", "invalid", "match")
        )
        fix = "re-fit it with `equisynth fit-ehr`" if damaged else hint
        raise ModelFileError(f"{exc}; {fix}") from None


def _conditions(items: list[str], label: int | None, gen, n: int) -> pd.DataFrame | None:
    """``COL=VALUE`` strings (+ ``--label``) -> one conditions row per patient, or None."""
    columns, levels = gen.layout_.columns, gen.layout_.levels
    values: dict[str, str] = {}
    for item in items:
        col, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--condition must look like COL=VALUE, got {item!r}")
        if col not in columns:
            raise ConfigError(
                f"--condition column '{col}' is not a demographic column of this model; "
                f"expected one of {', '.join(columns)}"
            )
        if value not in levels[col]:
            raise ConfigError(
                f"--condition {col}={value}: level not seen in training; expected one of "
                f"{', '.join(levels[col])}"
            )
        if values.get(col, value) != value:
            raise ConfigError(f"--condition gives two values for '{col}'; give one")
        values[col] = value
    if not values and label is None:
        return None
    missing = [c for c in columns if c not in values]
    if missing:
        example = " ".join(f"--condition {c}={levels[c][0]}" for c in missing)
        what = "--label needs" if not values else "--condition must give"
        raise ConfigError(
            f"{what} a value for every demographic column of the model (it draws "
            f"demographics before the label and the visits); missing: {', '.join(missing)}, "
            f"e.g. {example}"
        )
    frame = pd.DataFrame({c: [values[c]] * n for c in columns})
    if label is not None:
        frame["label"] = label
    return frame


def event_table(task) -> pd.DataFrame:
    """Synthetic patients as a long table: one row per code of a visit.

    Columns ``patient_id``, ``visit`` (0, 1, ... in time order), ``code`` (token
    ``"vocabulary:code"``), then the demographic columns and ``label`` of the patient.
    """
    clash = [c for c in task.demographics.columns if c in (*EVENT_COLUMNS, "label")]
    if clash:
        raise DataError(
            f"demographic column(s) {clash} clash with the event table's columns "
            f"{[*EVENT_COLUMNS, 'label']}; write a cohort directory instead (--out DIR)"
        )
    n_visits = task.visit_counts()
    sets = [v for p in task.visits for v in p]
    n_codes = np.array([len(v) for v in sets], dtype=np.int64)
    patient = np.repeat(np.repeat(np.arange(task.n_patients), n_visits), n_codes)
    visit = np.concatenate([np.arange(k) for k in n_visits]) if len(sets) else np.zeros(0, int)
    codes = np.concatenate(sets) if sets else np.zeros(0, dtype=np.int64)
    table = pd.DataFrame(
        {
            "patient_id": task.patient_ids[patient],
            "visit": np.repeat(visit, n_codes).astype(np.int64),
            "code": np.asarray(task.vocab, dtype=object)[codes],
        }
    )
    demo = task.demographics.iloc[patient].reset_index(drop=True)
    table = pd.concat([table, demo], axis=1)
    table["label"] = task.label[patient]
    return table


@handle_errors
def sample_ehr_command(
    model: Annotated[Path, typer.Argument(help="Model directory written by `equisynth fit-ehr`")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of synthetic patients")],
    out: Annotated[
        Path,
        typer.Option("--out", help="Cohort directory, or an event table (.csv, .parquet)"),
    ],
    condition: Annotated[
        list[str] | None,
        typer.Option("--condition", help="COL=VALUE for every demographic column (repeat)"),
    ] = None,
    label: Annotated[
        int | None, typer.Option("--label", help="Fix the label (0 or 1; needs --condition)")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed")] = None,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda")] = "cpu",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary line")] = False,
) -> None:
    """Draw synthetic patients from a fit-ehr model: a cohort directory or an event table."""
    run = start_run("sample-ehr", locals(), resolve_seed=False)  # no seed: the model's own
    setup_logging(quiet)
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda; got {device!r}")
    if label is not None and label not in (0, 1):
        raise ConfigError(f"--label must be 0 or 1; got {label}")
    as_table = out.name.lower().endswith(_TABLE_ENDINGS)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"output '{out}' exists; pass --overwrite or choose another path")
    check_output_path(out, overwrite=overwrite, marker=None if as_table else _COHORT_MARKER)
    if not model.is_dir():
        raise InputFileError(f"model directory '{model}' does not exist; check the path")
    gen = _load_model(model, device)
    conditions = _conditions(list(condition or []), label, gen, n)
    n_free = None if conditions is not None else n
    synthetic = gen.sample(n_free, conditions=conditions, random_state=seed)
    if as_table:
        write_table(event_table(synthetic), out, overwrite=overwrite)
        run.write(out, inputs=[model])
    else:
        cohort = synthetic.to_cohort()
        with atomic_output_dir(out, overwrite=overwrite, marker=_COHORT_MARKER) as tmp:
            cohort.to_parquet(tmp / "cohort")
            for item in (tmp / "cohort").iterdir():
                item.rename(tmp / item.name)
            (tmp / "cohort").rmdir()
            run.write(out, inputs=[model], into=tmp)
    if not quiet:
        n_visits = int(synthetic.visit_counts().sum())
        typer.echo(
            f"wrote {synthetic.n_patients} synthetic patients ({n_visits} visits) to {out}",
            err=True,
        )


def register(app: typer.Typer) -> None:
    app.command("fit-ehr")(fit_ehr_command)
    app.command("sample-ehr")(sample_ehr_command)
