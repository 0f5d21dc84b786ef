"""Label definitions of :func:`equisynth.data.tasks.make_task`: per patient, the label and the
time before which every input visit ends (see ``docs/ehr.md``, "Tasks")."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from equisynth.data.cohort import Cohort
from equisynth.exceptions import ConfigError, DataError


@dataclass
class Plan:
    """Per patient (index ``patient_id``): label (NaN = dropped) and the input cut-off."""

    label: pd.Series
    cutoff: pd.Series  # input visits end, and input codes are recorded, strictly before it
    dropped: dict[str, int]
    partial_visit: pd.Series | None = None  # in-visit mortality: the last visit's id ...
    partial_until: pd.Series | None = None  # ... and the time its early codes are known by


def _delta(cohort: Cohort, days: float):
    return pd.Timedelta(days=float(days)) if cohort.time_kind == "datetime" else float(days)


def known_time(t: pd.Series) -> pd.Series:
    """When a recorded time is known: a datetime at exactly midnight (a date without a time of
    day, e.g. MIMIC's STARTDATE) counts as known at the end of its day."""
    if not pd.api.types.is_datetime64_any_dtype(t):
        return t
    midnight = t.notna() & (t == t.dt.normalize())
    return t.where(~midnight, t + pd.Timedelta(days=1))


def visit_frame(cohort: Cohort) -> pd.DataFrame:
    v = cohort.visits
    out = v[["patient_id", "visit_id", "time"]].copy()
    out["end"] = v["end_time"].fillna(v["time"]) if "end_time" in v.columns else v["time"]
    for col in ("end_time", "died", "death_time"):
        if col in v.columns:
            out[col] = v[col]
    return out


def _death_date(cohort: Cohort, task: str) -> pd.Series:
    s = cohort.static
    if "death_date" not in s.columns:
        raise DataError(
            f"task {task!r} needs a boolean 'died' column in visits or a 'death_date' column "
            "in static; this cohort has neither (load_mimic3/load_synthea provide them)"
        )
    dd = s.set_index("patient_id")["death_date"]
    is_dt = pd.api.types.is_datetime64_any_dtype(dd)
    if is_dt != (cohort.time_kind == "datetime") or not (
        is_dt or pd.api.types.is_numeric_dtype(dd)
    ):
        raise DataError(
            f"static.death_date ({dd.dtype}) must be of the same kind as visits.time "
            f"({cohort.visits['time'].dtype}); convert it (pd.to_datetime)"
        )
    return dd


def _last_and_prior(V: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    t_last = V.groupby("patient_id", sort=False)["time"].max()
    prior = V[V["end"] < V["patient_id"].map(t_last)]
    prior_end = prior.groupby("patient_id", sort=False)["end"].max()
    last = V[V["time"] == V["patient_id"].map(t_last)].groupby("patient_id", sort=False).tail(1)
    return t_last, prior_end, last.set_index("patient_id")


_NO_PRIOR = "no visit ending before the last visit starts (e.g. a single visit)"


def plan_next_visit(
    cohort: Cohort, V: pd.DataFrame, task: str, horizon_days: float, readmission_days: float
) -> Plan:
    t_last, prior_end, last = _last_and_prior(V)
    pids = pd.Index(cohort.static["patient_id"])
    dropped = {_NO_PRIOR: int((~pids.isin(prior_end.index)).sum())}
    prior_end = prior_end.reindex(pids)
    t_last = t_last.reindex(pids)
    if task == "readmission":
        label = (t_last - prior_end) <= _delta(cohort, readmission_days)
    elif "died" in V.columns:
        label = last["died"].reindex(pids).astype(bool)
    else:
        dd = _death_date(cohort, task).reindex(pids)
        label = dd.notna() & (dd <= t_last + _delta(cohort, horizon_days))
        early = dd.notna() & (dd <= prior_end)
        dropped["death recorded before the input visits end"] = int(early.sum())
        prior_end = prior_end.where(~early)
    return Plan(label.astype(float).where(prior_end.notna()), t_last, dropped)


def plan_in_visit(cohort: Cohort, V: pd.DataFrame, window_hours: float) -> Plan:
    t_last, prior_end, last = _last_and_prior(V)
    pids = pd.Index(cohort.static["patient_id"])
    last = last.reindex(pids)
    t_last = t_last.reindex(pids)
    if window_hours < 0:
        raise ConfigError(f"window_hours must be >= 0, got {window_hours}")
    if "died" in V.columns:
        died = last["died"].astype(bool)
        death = last["death_time"] if "death_time" in last.columns else last["end"]
        death = death.fillna(last["end"])
    else:
        dd = _death_date(cohort, "in_visit_mortality").reindex(pids)
        start, stop = last["time"], last["end"]
        if cohort.time_kind == "datetime":
            start, stop = start.dt.normalize(), stop.dt.normalize()
        died = dd.notna() & (dd >= start) & (dd <= stop)
        death = known_time(dd)
    if window_hours == 0:
        ok = pd.Series(pids.isin(prior_end.index), index=pids)
        return Plan(died.astype(float).where(ok), t_last, {_NO_PRIOR: int((~ok).sum())})
    if "end_time" not in V.columns:
        raise DataError(
            "in_visit_mortality with window_hours > 0 needs visit end times (visits.end_time) to "
            "know that a visit outlasts the window; this cohort has none (e.g. Synthea without "
            "encounters.csv): pass window_hours=0 (prior visits only) or use mortality_next_visit"
        )
    until = t_last + _delta(cohort, window_hours / 24.0)
    outcome = death.where(died, last["end_time"])
    ok = outcome > until
    reason = f"visit ended (death or discharge) within the first {window_hours:g} h, or end unknown"
    return Plan(
        died.astype(float).where(ok),
        t_last,
        {reason: int((~ok).sum())},
        partial_visit=last["visit_id"],
        partial_until=until,
    )


def plan_custom(cohort: Cohort, V: pd.DataFrame, task, label_time: str | None) -> Plan:
    static = cohort.static.set_index("patient_id")
    pids = static.index
    if callable(task):
        out = task(cohort)
        if isinstance(out, pd.DataFrame):
            if "label" not in out.columns:
                raise DataError("a task callable returning a DataFrame needs a 'label' column")
            time = out["time"] if "time" in out.columns else None
            out = out["label"]
        else:
            time = None
        if not isinstance(out, pd.Series):
            raise DataError(
                f"a task callable must return a Series (or DataFrame) indexed by patient_id, got "
                f"{type(out).__name__}"
            )
        out = out.set_axis(out.index.astype(str))
        label = out.reindex(pids)
    else:
        label = static[task]
        time = None
        if label_time is not None:
            if label_time not in static.columns:
                raise DataError(f"label_time column {label_time!r} is not in static")
            time = static[label_time]
    if pd.api.types.is_bool_dtype(label):
        label = label.astype(float)
    label_raw = label
    numeric = pd.to_numeric(label, errors="coerce").astype(float)
    bad = label.notna() & ~numeric.isin([0.0, 1.0])
    label = numeric
    if bad.any():
        raise DataError(
            f"the label of task {getattr(task, '__name__', task)!r} must be 0/1, got "
            f"{label_raw[bad].iloc[0]!r} for patient {label[bad].index[0]!r}"
        )
    t_last, _, _ = _last_and_prior(V)
    cutoff = t_last.reindex(pids)
    if time is not None:
        time = time.reindex(pids)
        is_dt = pd.api.types.is_datetime64_any_dtype(time)
        if is_dt != (cohort.time_kind == "datetime") or not (
            is_dt or pd.api.types.is_numeric_dtype(time)
        ):
            raise DataError(
                f"label times ({time.dtype}) must be of the same kind as visits.time "
                f"({cohort.visits['time'].dtype})"
            )
        cutoff = time.where(time.notna(), cutoff)
    first_end = V.groupby("patient_id", sort=False)["end"].min().reindex(pids)
    ok = first_end < cutoff
    dropped = {
        "label missing": int(label.isna().sum()),
        "no visit ending before the label event (or before the last visit)": int(
            (label.notna() & ~ok).sum()
        ),
    }
    return Plan(label.where(ok), cutoff, dropped)
