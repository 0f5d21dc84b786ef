"""Patient-level prediction tasks over longitudinal EHR: the :class:`SequenceTask` container.

A :class:`SequenceTask` is what the EHR generator, the downstream sequence model and the
FairSynth feedback loop consume: one row per patient with categorical demographics, a 0/1 label
and the patient's input visits, each a sorted set of integer code ids into a shared vocabulary.
It holds no torch tensors (``data`` never imports torch).

:func:`make_task` turns a :class:`~equisynth.data.cohort.Cohort` into a :class:`SequenceTask`
(the label definitions are in its docstring and in ``docs/ehr.md``); every task's input visits
end strictly before the event that defines its label. :func:`task_summary` reports label
prevalence by group.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from equisynth.data._task_plans import (
    Plan,
    known_time,
    plan_custom,
    plan_in_visit,
    plan_next_visit,
    visit_frame,
)
from equisynth.data.cohort import Cohort
from equisynth.exceptions import ConfigError, DataError

__all__ = ["TASKS", "SequenceTask", "group_codes", "make_task", "task_summary"]

logger = logging.getLogger(__name__)

#: Names of the built-in tasks of :func:`make_task`.
TASKS = ("mortality_next_visit", "in_visit_mortality", "readmission")
TaskName = Literal["mortality_next_visit", "in_visit_mortality", "readmission"]


def group_codes(demographics: pd.DataFrame, sensitive: Sequence[str]) -> pd.Series:
    """Intersectional group label per row, e.g. ``"gender=F & race=black"`` (fairlearn style)."""
    sensitive = list(sensitive)
    missing = [c for c in sensitive if c not in demographics.columns]
    if not sensitive or missing:
        raise DataError(
            f"sensitive column(s) {missing or sensitive} not among the demographics "
            f"{list(demographics.columns)}; name one or more of them"
        )
    parts = [f"{c}=" + demographics[c].astype(str) for c in sensitive]
    out = parts[0]
    for p in parts[1:]:
        out = out + " & " + p
    return out.rename("group").reset_index(drop=True)


@dataclass
class SequenceTask:
    """Patients as (demographics, label, visits of codes) for one prediction task.

    Parameters
    ----------
    patient_ids : array of str, shape (n,)
    demographics : DataFrame, shape (n, d)
        Categorical columns (values are strings); index ``0..n-1``.
    label : array of int, shape (n,)
        0/1 outcome of the task.
    visits : list of list of int arrays
        Per patient, per visit: the sorted unique code ids (into ``vocab``) of that visit. Every
        patient has at least one visit and every visit at least one code.
    vocab : list of str
        Code tokens ``"vocabulary:code"``; ids index this list.
    task : str
        Name of the task (e.g. ``"mortality_next_visit"``).
    is_synthetic : array of bool, shape (n,), optional
        Defaults to all False.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> t = SequenceTask(
    ...     patient_ids=np.array(["p1", "p2"]),
    ...     demographics=pd.DataFrame({"sex": ["F", "M"]}),
    ...     label=np.array([1, 0]),
    ...     visits=[[np.array([0, 2])], [np.array([1]), np.array([0, 1])]],
    ...     vocab=["dx:a", "dx:b", "rx:c"],
    ...     task="demo",
    ... )
    >>> t.n_patients, t.n_codes, t.groups(["sex"]).tolist()
    (2, 3, ['sex=F', 'sex=M'])
    """

    patient_ids: np.ndarray
    demographics: pd.DataFrame
    label: np.ndarray
    visits: list[list[np.ndarray]]
    vocab: list[str]
    task: str = "task"
    is_synthetic: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        self.patient_ids = np.asarray(self.patient_ids).astype(str)
        n = len(self.patient_ids)
        if not isinstance(self.demographics, pd.DataFrame):
            raise DataError(
                f"demographics must be a DataFrame, got {type(self.demographics).__name__}"
            )
        self.demographics = self.demographics.reset_index(drop=True)
        self.label = np.asarray(self.label)
        if self.is_synthetic is None:
            self.is_synthetic = np.zeros(n, dtype=bool)
        self.is_synthetic = np.asarray(self.is_synthetic, dtype=bool)
        self.vocab = [str(v) for v in self.vocab]
        sizes = {
            "demographics": len(self.demographics),
            "label": len(self.label),
            "visits": len(self.visits),
            "is_synthetic": len(self.is_synthetic),
        }
        bad = {k: v for k, v in sizes.items() if v != n}
        if bad:
            raise DataError(f"SequenceTask parts must have {n} patients (patient_ids), got {bad}")
        if self.demographics.isna().any().any():
            col = self.demographics.columns[self.demographics.isna().any()].tolist()
            raise DataError(
                f"demographic column(s) {col} have missing values; fill them (e.g. 'unknown') "
                "or drop those patients"
            )
        if n and not np.isin(self.label, (0, 1)).all():
            raise DataError(
                f"label must be 0/1, got values {sorted(set(np.unique(self.label).tolist()))[:10]}"
            )
        self.label = self.label.astype(np.int64)
        n_codes = len(self.vocab)
        visits = []
        for i, patient in enumerate(self.visits):
            if len(patient) == 0:
                raise DataError(
                    f"patient {self.patient_ids[i]!r} has no visit; every patient needs at "
                    "least one visit with codes"
                )
            pv = []
            for v in patient:
                arr = np.unique(np.asarray(v, dtype=np.int64))
                if arr.size == 0:
                    raise DataError(
                        f"patient {self.patient_ids[i]!r} has a visit without codes; drop empty "
                        "visits before building the task"
                    )
                if arr[0] < 0 or arr[-1] >= n_codes:
                    raise DataError(
                        f"patient {self.patient_ids[i]!r} has code id {int(arr[-1])} outside the "
                        f"vocabulary of {n_codes} codes"
                    )
                pv.append(arr)
            visits.append(pv)
        self.visits = visits

    # ------------------------------------------------------------------ views
    @property
    def n_patients(self) -> int:
        return len(self.patient_ids)

    @property
    def n_codes(self) -> int:
        return len(self.vocab)

    def visit_counts(self) -> np.ndarray:
        """Number of visits of each patient."""
        return np.array([len(p) for p in self.visits], dtype=np.int64)

    def groups(self, sensitive: Sequence[str]) -> pd.Series:
        """Intersectional group label of each patient (see :func:`group_codes`)."""
        return group_codes(self.demographics, sensitive)

    def visit_sets(self) -> list[list[frozenset[str]]]:
        """Patients as lists of visits as sets of code tokens (for the quality metrics)."""
        vocab = self.vocab
        return [[frozenset(vocab[j] for j in v) for v in p] for p in self.visits]

    # ------------------------------------------------------------------ algebra
    def subset(self, idx) -> SequenceTask:
        """The patients at positions ``idx`` (integer positions or a boolean mask)."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return SequenceTask(
            patient_ids=self.patient_ids[idx],
            demographics=self.demographics.iloc[idx].reset_index(drop=True),
            label=self.label[idx],
            visits=[self.visits[i] for i in idx],
            vocab=list(self.vocab),
            task=self.task,
            is_synthetic=self.is_synthetic[idx],
        )

    def concat(self, other: SequenceTask) -> SequenceTask:
        """``self`` then ``other`` (same vocabulary and demographic columns required)."""
        if list(other.vocab) != list(self.vocab):
            raise DataError("cannot concatenate tasks with different vocabularies")
        if list(other.demographics.columns) != list(self.demographics.columns):
            raise DataError(
                f"cannot concatenate tasks with different demographics: "
                f"{list(self.demographics.columns)} vs {list(other.demographics.columns)}"
            )
        return SequenceTask(
            patient_ids=np.concatenate([self.patient_ids, other.patient_ids]),
            demographics=pd.concat([self.demographics, other.demographics], ignore_index=True),
            label=np.concatenate([self.label, other.label]),
            visits=[*self.visits, *other.visits],
            vocab=list(self.vocab),
            task=self.task,
            is_synthetic=np.concatenate([self.is_synthetic, other.is_synthetic]),
        )

    def to_cohort(self) -> Cohort:
        """The task's patients as a :class:`Cohort` (for the quality metrics and for saving).

        ``static`` holds the demographics, ``label`` and ``is_synthetic``; visit ``time`` is the
        visit's position (0, 1, ...; a task keeps no dates); tokens ``"vocabulary:code"`` are
        split at their first ``:`` (a token without one gets vocabulary ``"code"``). Repeated
        patient ids (e.g. oversampled copies) get a suffix ``~2``, ``~3``, ... to stay unique.
        """
        clash = {"patient_id", "label", "is_synthetic"} & set(self.demographics.columns)
        if clash:
            raise DataError(f"demographic column(s) {sorted(clash)} clash with cohort columns")
        ids = pd.Series(self.patient_ids)
        rank = ids.groupby(ids).cumcount()
        ids = ids.where(rank == 0, ids + "~" + (rank + 1).astype(str))
        static = self.demographics.copy()
        static.insert(0, "patient_id", ids.to_numpy())
        static["label"] = self.label
        static["is_synthetic"] = self.is_synthetic
        vocab = pd.Series(self.vocab)
        has_sep = vocab.str.contains(":", regex=False)
        vocabulary = vocab.str.split(":", n=1).str[0].where(has_sep, "code")
        code = vocab.str.split(":", n=1).str[-1]
        visit_rows, code_rows = [], []
        for pid, patient in zip(ids, self.visits, strict=True):
            for j, v in enumerate(patient):
                vid = f"{pid}/{j}"
                visit_rows.append((pid, vid, float(j)))
                code_rows.extend((vid, int(c)) for c in v)
        visits = pd.DataFrame(visit_rows, columns=["patient_id", "visit_id", "time"])
        cid = np.array([c for _, c in code_rows], dtype=np.int64)
        codes = pd.DataFrame(
            {
                "visit_id": [v for v, _ in code_rows],
                "vocabulary": vocabulary.to_numpy()[cid],
                "code": code.to_numpy()[cid],
            }
        )
        return Cohort(static, visits, codes)


def _input_codes(cohort: Cohort, V: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Rows (patient_id, visit position, token) of every input code of the kept patients."""
    keep = plan.label.notna()
    cut = V["patient_id"].map(plan.cutoff)
    vin = V[(V["end"] < cut) & V["patient_id"].map(keep).fillna(False).astype(bool)]
    pos = pd.Series(np.arange(len(V)), index=V["visit_id"].to_numpy())
    owner = pd.Series(V["patient_id"].to_numpy(), index=V["visit_id"].to_numpy())
    codes = cohort.codes.assign(token=cohort.tokens().to_numpy())
    codes["patient_id"] = codes["visit_id"].map(owner).to_numpy()
    codes["_v"] = codes["visit_id"].map(pos).to_numpy()
    cin = codes[codes["visit_id"].isin(vin["visit_id"])]
    if "time" in cin.columns:  # a code recorded after the cut-off is never an input
        cin = cin[cin["time"].isna() | (cin["time"] < cin["patient_id"].map(plan.cutoff))]
    parts = [cin]
    if plan.partial_until is not None:
        early_visits = plan.partial_visit[keep]
        cl = codes[codes["visit_id"].isin(early_visits)]
        if "time" in cl.columns:
            known = known_time(cl["time"])
            parts.append(cl[known.notna() & (known <= cl["patient_id"].map(plan.partial_until))])
    return pd.concat(parts, ignore_index=True)[["patient_id", "_v", "token"]]


def make_task(
    cohort: Cohort,
    task: TaskName | str | Callable[[Cohort], pd.Series | pd.DataFrame],
    *,
    demographics: Sequence[str],
    min_code_count: int = 5,
    max_visits: int | None = None,
    horizon_days: float = 365.0,
    readmission_days: float = 30.0,
    window_hours: float = 24.0,
    label_time: str | None = None,
) -> SequenceTask:
    """Build a patient-level prediction task from a cohort (no input after the label's event).

    Tasks (visits ``v_1 .. v_k`` in time order, ``t_k`` = start of the last visit; a visit's
    end is ``end_time``, or its ``time`` when it has none):

    - ``"mortality_next_visit"`` (the FairSynth paper's): input = visits that end before
      ``t_k``; label = the patient dies with the last visit: its ``died`` flag when visits have
      one (MIMIC-III: in-hospital death during the last admission), else ``death_date <= t_k +
      horizon_days`` (Synthea; patients whose death is recorded before the input ends are
      dropped).
    - ``"in_visit_mortality"``: label = death during the last visit (``died``; without it,
      ``death_date`` on a day of the last visit). Input = the earlier visits plus the codes of
      the last visit recorded within its first ``window_hours`` (a date without a time of day
      counts at the end of its day; codes without a time, such as ICD diagnoses assigned at
      discharge, never count); patients whose last visit ends (death or discharge) within the
      window are dropped. ``window_hours=0``: earlier visits only.
    - ``"readmission"``: input = visits that end before ``t_k``; label = the last visit starts
      at most ``readmission_days`` after the end of the latest of them (i.e. given that the
      patient comes back, is it within 30 days of the previous discharge?).
    - the name of a 0/1 column of ``static`` (with ``label_time``, a static column holding the
      time of the event that defines it), or a callable ``(cohort) -> Series`` of 0/1 indexed
      by ``patient_id`` (or a DataFrame with ``label`` and optionally ``time``): input = visits
      that end before that time, or, without one, before ``t_k``.

    Patients without an input visit, or without a label, are dropped and counted (logged at
    INFO). The vocabulary holds the tokens found in the input visits of at least
    ``min_code_count`` patients (sorted); rarer codes are dropped, then visits left empty,
    then ``max_visits`` keeps each patient's most recent visits. Demographic values become
    strings (missing: ``"unknown"``).

    Examples
    --------
    >>> import pandas as pd
    >>> from equisynth.data.cohort import Cohort
    >>> static = pd.DataFrame({"patient_id": ["a", "b"], "sex": ["F", "M"]})
    >>> visits = pd.DataFrame({"patient_id": ["a", "a", "b", "b"], "visit_id": list("wxyz"),
    ...                        "time": [0.0, 10.0, 0.0, 50.0], "died": [0, 1, 0, 0]})
    >>> codes = pd.DataFrame({"visit_id": list("wxyz"), "vocabulary": "dx",
    ...                       "code": ["1", "2", "1", "3"]})
    >>> t = make_task(Cohort(static, visits, codes), "mortality_next_visit",
    ...               demographics=["sex"], min_code_count=1)
    >>> t.label.tolist(), t.vocab
    ([1, 0], ['dx:1'])
    """
    if not isinstance(cohort, Cohort):
        raise DataError(f"make_task expects a Cohort, got {type(cohort).__name__}")
    demographics = [demographics] if isinstance(demographics, str) else list(demographics)
    missing = [c for c in demographics if c not in cohort.static.columns or c == "patient_id"]
    if missing:
        raise DataError(
            f"demographic column(s) {missing} not in the cohort's static table "
            f"{list(cohort.static.columns.drop('patient_id'))}"
        )
    if not isinstance(min_code_count, int | np.integer) or min_code_count < 1:
        raise ConfigError(f"min_code_count must be an integer >= 1, got {min_code_count!r}")
    if max_visits is not None and (not isinstance(max_visits, int | np.integer) or max_visits < 1):
        raise ConfigError(f"max_visits must be None or an integer >= 1, got {max_visits!r}")
    for opt, value in (("horizon_days", horizon_days), ("readmission_days", readmission_days)):
        if not np.isfinite(value) or value < 0:
            raise ConfigError(f"{opt} must be a finite number >= 0, got {value!r}")
    V = visit_frame(cohort)
    if callable(task):
        name = getattr(task, "__name__", "custom")
        plan = plan_custom(cohort, V, task, label_time)
    elif task in ("mortality_next_visit", "readmission"):
        name, plan = task, plan_next_visit(cohort, V, task, horizon_days, readmission_days)
    elif task == "in_visit_mortality":
        name, plan = task, plan_in_visit(cohort, V, window_hours)
    elif isinstance(task, str) and task in cohort.static.columns and task != "patient_id":
        name, plan = task, plan_custom(cohort, V, task, label_time)
    else:
        raise ConfigError(
            f"unknown task {task!r}: expected one of {list(TASKS)}, a 0/1 column of static, or a "
            "callable (cohort) -> Series of 0/1 by patient_id"
        )
    X = _input_codes(cohort, V, plan)
    counts = X.drop_duplicates(["patient_id", "token"])["token"].value_counts()
    rare = counts.index[counts < min_code_count]
    X = X[~X["token"].isin(rare)]
    if max_visits is not None:
        order = X.drop_duplicates("_v").sort_values("_v")
        recent = order.groupby("patient_id", sort=False).tail(max_visits)["_v"]
        X = X[X["_v"].isin(recent)]
    kept_by_label = int(plan.label.notna().sum())
    pids = pd.Index(cohort.static["patient_id"])
    kept = pids[pids.isin(X["patient_id"]) & plan.label.reindex(pids).notna().to_numpy()]
    dropped = {k: v for k, v in plan.dropped.items() if v}
    if kept_by_label - len(kept):
        dropped[f"no input code seen in >= {min_code_count} patients"] = kept_by_label - len(kept)
    if len(kept) == 0:
        raise DataError(
            f"task {name!r} keeps no patient of the {cohort.n_patients} (dropped: {dropped}); "
            "choose another task or lower min_code_count"
        )
    vocab = sorted(X["token"].unique().tolist())
    index = {t: i for i, t in enumerate(vocab)}
    position = pd.Series(np.arange(len(kept)), index=kept)
    X = X.assign(_id=X["token"].map(index), _p=X["patient_id"].map(position))
    X = X.sort_values(["_p", "_v", "_id"], kind="stable")
    visits: list[list[np.ndarray]] = [[] for _ in kept]
    for (p, _), g in X.groupby(["_p", "_v"], sort=False)["_id"]:
        visits[int(p)].append(np.unique(g.to_numpy(dtype=np.int64)))
    static = cohort.static.set_index("patient_id").loc[kept]
    demo = pd.DataFrame(
        {c: static[c].astype(object).where(static[c].notna(), "unknown") for c in demographics},
        index=static.index,
    )
    demo = demo.astype(str).reset_index(drop=True)
    for c in demographics:
        if pd.api.types.is_numeric_dtype(static[c]) and demo[c].nunique() > 20:
            n_values = demo[c].nunique()
            logger.warning("demographic %r has %d distinct values; bin it", c, n_values)
    label = plan.label.reindex(kept).to_numpy().astype(np.int64)
    logger.info(
        "make_task(%s): %d of %d patients kept (label prevalence %.3f), %d codes; dropped: %s",
        *(name, len(kept), cohort.n_patients, label.mean(), len(vocab), dropped or "none"),
    )
    return SequenceTask(
        patient_ids=np.asarray(kept, dtype=str),
        demographics=demo,
        label=label,
        visits=visits,
        vocab=vocab,
        task=name,
    )


def task_summary(task: SequenceTask, sensitive: Sequence[str]) -> pd.DataFrame:
    """Label prevalence overall, by each sensitive attribute, and by their intersection.

    Columns: ``grouping`` (``"all"``, an attribute, or ``"a x b"``), ``group``, ``n_patients``,
    ``share`` (of all patients), ``n_positive``, ``prevalence``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> t = SequenceTask(["p1", "p2", "p3"], pd.DataFrame({"sex": ["F", "F", "M"]}),
    ...                  [1, 0, 0], [[[0]], [[0]], [[0]]], ["dx:a"])
    >>> task_summary(t, ["sex"])[["group", "n_patients", "prevalence"]].values.tolist()
    [['all', 3, 0.3333333333333333], ['F', 2, 0.5], ['M', 1, 0.0]]
    """
    sensitive = [sensitive] if isinstance(sensitive, str) else list(sensitive)
    group_codes(task.demographics, sensitive)  # validates the columns
    y = pd.Series(task.label)
    n = task.n_patients
    rows = [("all", "all", n, 1.0, int(y.sum()), float(y.mean()) if n else float("nan"))]
    groupings = [[c] for c in sensitive] + ([sensitive] if len(sensitive) > 1 else [])
    for cols in groupings:
        g = group_codes(task.demographics, cols) if len(cols) > 1 else task.demographics[cols[0]]
        for value, idx in y.groupby(g.to_numpy()).groups.items():
            yy = y[idx]
            rows.append(
                (
                    " x ".join(cols),
                    str(value),
                    len(yy),
                    len(yy) / n,
                    int(yy.sum()),
                    float(yy.mean()),
                )
            )
    return pd.DataFrame(
        rows, columns=["grouping", "group", "n_patients", "share", "n_positive", "prevalence"]
    )
