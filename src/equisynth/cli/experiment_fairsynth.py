"""``equisynth experiment fairsynth``: the FairSynth experiment on longitudinal EHR over seeds.

Registered on the ``experiment`` group by :mod:`equisynth.cli.experiment`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from equisynth.cli._common import handle_errors, setup_logging
from equisynth.exceptions import ConfigError, DataError
from equisynth.manifest import start_run

__all__ = ["SOURCE_DEFAULTS", "build_protocol", "fairsynth_command"]

#: Per data source kind: (default demographic inputs, default sensitive attributes).
SOURCE_DEFAULTS = {
    "synthea": (("gender", "race", "ethnicity", "age_group"), ("race",)),
    "mimic3": (("gender", "ethnicity_group", "age_group", "insurance"), ("ethnicity_group",)),
}
TASKS = ("mortality_next_visit", "in_visit_mortality", "readmission")


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or () for v in str(value).split(",") if v.strip()]


def parse_amounts(value: str):
    """``--synth-per-group``: ``fill``, a ratio in (0, 1] or a whole number of patients."""
    if value in ("fill", "auto"):
        return "fill"
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(
            f"--synth-per-group must be 'fill', a ratio in (0, 1] or a whole number, got {value!r}"
        ) from None
    if "." in value:
        if not 0.0 < number <= 1.0:
            raise ConfigError(f"--synth-per-group ratio must be in (0, 1], got {value}")
        return number
    if number < 0:
        raise ConfigError(f"--synth-per-group total must be >= 0, got {value}")
    return int(number)


def _source_path(spec: str) -> Path | None:
    _, sep, path = str(spec).partition(":")
    return Path(path) if sep and path.strip() else None


def load_task(data: str, task: str, demographics: list[str], sensitive: list[str], max_visits):
    """The cohort of ``data`` as a SequenceTask (with the demographic and sensitive defaults)."""
    from equisynth.data.loaders import load_source

    kind = str(data).partition(":")[0].strip().lower()
    if task not in TASKS:
        raise ConfigError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    cohort = load_source(data)
    default_demo, default_sens = SOURCE_DEFAULTS.get(kind, ((), ()))
    columns = [c for c in cohort.static.columns if c != "patient_id"]
    sensitive = sensitive or list(default_sens)
    if not sensitive:
        raise ConfigError(f"give --sensitive for a {kind!r} source; columns: {columns}")
    demo = demographics or [c for c in default_demo if c in columns]
    if not demo:
        demo = [c for c in columns if cohort.static[c].dtype == object]
    unknown = [c for c in [*demo, *sensitive] if c not in columns]
    if unknown:
        raise DataError(
            f"unknown demographic / sensitive column(s) {unknown}; the cohort's static columns "
            f"are {columns}"
        )
    demo = list(dict.fromkeys([*demo, *sensitive]))
    from equisynth.data.tasks import make_task

    kwargs = {} if max_visits is None else {"max_visits": max_visits}
    return make_task(cohort, task, demographics=demo, **kwargs), sensitive


def build_protocol(seq_task, sensitive, **options):
    """The :class:`FairSynthProtocol` of the command's options."""
    from equisynth.evaluation.protocols.fairsynth import FairSynthProtocol

    return FairSynthProtocol(task=seq_task, sensitive=sensitive, **options)


@handle_errors
def fairsynth_command(
    data: Annotated[
        str, typer.Option("--data", help="synthea:PATH or mimic3:PATH (or cohort:PATH)")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output directory")],
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Number of seeds")] = 5,
    task: Annotated[
        str, typer.Option("--task", help="mortality_next_visit, in_visit_mortality, readmission")
    ] = "mortality_next_visit",
    sensitive: Annotated[
        list[str] | None,
        typer.Option("--sensitive", help="Sensitive column(s) (default: race / ethnicity_group)"),
    ] = None,
    demographics: Annotated[
        list[str] | None,
        typer.Option("--demographics", help="Demographic columns of the task (model inputs)"),
    ] = None,
    objective: Annotated[
        str, typer.Option("--objective", help="disparate_impact or worst_group_tpr")
    ] = "disparate_impact",
    arms: Annotated[
        list[str] | None,
        typer.Option("--arms", help="Arms (comma-separated or repeated); default all four"),
    ] = None,
    grid: Annotated[
        str | None, typer.Option("--grid", help="real, synth or lambda (with --grid-values)")
    ] = None,
    grid_values: Annotated[
        list[str] | None,
        typer.Option("--grid-values", help="Grid settings (comma-separated or repeated)"),
    ] = None,
    n_synth: Annotated[
        int | None, typer.Option("--n-synth", min=0, help="Synthetic total of --grid real")
    ] = None,
    synth_per_group: Annotated[
        str, typer.Option("--synth-per-group", help="fill, a ratio in (0, 1] or a total")
    ] = "fill",
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Feedback-loop rounds")] = 3,
    lambda_init: Annotated[
        float, typer.Option("--lambda-init", min=0.0, help="Fairness weight of round 0")
    ] = 1.0,
    generator: Annotated[
        str, typer.Option("--generator", help="halo, or empirical (a fast test double)")
    ] = "halo",
    generator_epochs: Annotated[
        int | None, typer.Option("--generator-epochs", min=1, help="Generator training epochs")
    ] = None,
    generator_d_model: Annotated[
        int | None, typer.Option("--generator-d-model", min=1, help="Generator width")
    ] = None,
    generator_layers: Annotated[
        int | None, typer.Option("--generator-layers", min=1, help="Generator transformer layers")
    ] = None,
    downstream_epochs: Annotated[
        int, typer.Option("--downstream-epochs", min=1, help="Downstream training epochs")
    ] = 20,
    downstream: Annotated[
        str, typer.Option("--downstream", help="Sequence model: gru or transformer")
    ] = "gru",
    max_visits: Annotated[
        int | None, typer.Option("--max-visits", min=1, help="Visits kept per patient")
    ] = None,
    include_demographics: Annotated[
        bool, typer.Option(help="Demographics as downstream inputs (every arm)")
    ] = True,
    test_size: Annotated[float, typer.Option("--test-size", help="Test share")] = 0.2,
    min_group_size: Annotated[
        int, typer.Option("--min-group-size", min=1, help="Fewest test patients behind a rate")
    ] = 10,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or auto")] = "cpu",
    jobs: Annotated[int, typer.Option("--jobs", help="Parallel (seed, arm) tasks")] = 1,
    backend: Annotated[str, typer.Option("--backend", help="local or ray")] = "local",
    plots: Annotated[bool, typer.Option(help="Write plots")] = True,
    quality: Annotated[
        bool, typer.Option(help="Quality section of the generated patients (first seed)")
    ] = True,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing --out")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or log lines")] = False,
) -> None:
    """Run the FairSynth experiment (real, real_synth, real_oversample, real_fairsynth) over seeds."""
    from equisynth.cli.experiment import check_out, finish, parse_arms
    from equisynth.evaluation.arm_quality import QualityOptions
    from equisynth.evaluation.backends import resolve_backend
    from equisynth.evaluation.protocols.fairsynth import FAIRSYNTH_ARMS
    from equisynth.evaluation.runner import run_experiment

    run = start_run("experiment fairsynth", locals())
    setup_logging(quiet)
    resolve_backend(backend)
    arm_list = parse_arms(arms, FAIRSYNTH_ARMS)
    if grid is not None and grid not in ("real", "synth", "lambda"):
        raise ConfigError(f"--grid must be real, synth or lambda, got {grid!r}")
    values = _split(grid_values)
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        raise ConfigError(f"--grid-values must be numbers, got {values}") from None
    amounts = parse_amounts(synth_per_group)
    check_out(out, overwrite)
    seq_task, sens = load_task(data, task, _split(demographics), _split(sensitive), max_visits)
    generator_params = {"device": device}
    if generator_epochs is not None:
        generator_params["n_epochs"] = generator_epochs
    if generator_d_model is not None:
        heads = next(h for h in (4, 2, 1) if generator_d_model % h == 0)
        generator_params.update(d_model=generator_d_model, n_heads=heads)
    if generator_layers is not None:
        generator_params["n_layers"] = generator_layers
    if max_visits is not None:
        generator_params["max_visits"] = max_visits
    downstream_params = {
        "kind": downstream,
        "n_epochs": downstream_epochs,
        "demographics": include_demographics,
        "device": device,
    }
    protocol = build_protocol(
        seq_task,
        sens,
        arms=arm_list,
        objective=objective,
        test_size=test_size,
        grid=grid,
        grid_values=numbers,
        n_synth=n_synth,
        synth_per_group=amounts,
        generator=generator,
        generator_params=generator_params if generator == "halo" else {},
        downstream_params=downstream_params,
        fairsynth_params={"n_rounds": rounds, "lambda_init": lambda_init},
        min_group_size=min_group_size,
    )
    result = run_experiment(protocol, seeds=seeds, n_jobs=jobs, verbose=not quiet, backend=backend)
    finish(
        result,
        out,
        overwrite=overwrite,
        plots=plots,
        quality=QualityOptions() if quality else None,
        title="FairSynth experiment",
        protocol=protocol,
    )
    run.write(out, inputs=[_source_path(data)])
