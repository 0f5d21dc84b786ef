"""The longitudinal cohort: patients (static table), ordered visits, and the codes of each visit.

A :class:`Cohort` holds three tidy tables:

- ``static``: one row per patient, ``patient_id`` (str) plus demographics and labels;
- ``visits``: one row per visit, ``patient_id``, ``visit_id`` (str) and ``time`` (datetime64 or
  float), plus optional columns (``end_time``, ``died``, ...), sorted by patient (in the order
  of ``static``) then time;
- ``codes``: one row per code of a visit, ``visit_id``, ``vocabulary`` and ``code`` (str), plus an
  optional ``time`` (when the code was recorded, if known).

A code's token is ``"vocabulary:code"`` (e.g. ``"diagnoses:4019"``); the :attr:`Cohort.patients`
view gives each visit's tokens as a ``frozenset``, which is what the longitudinal quality
metrics read. The tables are checked on construction; bad input is either refused with a
one-line :class:`~equisynth.exceptions.DataError` (``validate="raise"``) or repaired, with
every repair logged at INFO with its count (``validate="repair"``). See ``docs/ehr.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from equisynth.data._cohort_checks import is_text, validate_tables
from equisynth.exceptions import ConfigError, DataError, InputFileError
from equisynth.io import atomic_output_dir

__all__ = ["COHORT_FORMAT_VERSION", "Cohort", "Patient", "VisitCodes"]

#: Version of the on-disk format written by :meth:`Cohort.to_parquet`.
COHORT_FORMAT_VERSION = 1
_MARKER = "cohort.json"
_FILES = ("static", "visits", "codes")
Validate = Literal["raise", "repair"]


@dataclass(frozen=True)
class VisitCodes:
    """One visit: its id, its time and the set of its code tokens ``"vocabulary:code"``."""

    visit_id: str
    time: Any
    codes: frozenset[str]


@dataclass(frozen=True)
class Patient:
    """One patient: id and visits in time order."""

    patient_id: str
    visits: tuple[VisitCodes, ...]


# ----------------------------------------------------------------------------- the model
class Cohort:
    """Patients with ordered visits of coded events, validated on construction.

    Parameters
    ----------
    static : DataFrame
        One row per patient: ``patient_id`` and demographics/labels. Missing values in text
        (object, string, category) columns count as missing demographics; numeric and
        datetime columns may hold missing values (e.g. ``death_date`` of a living patient).
    visits : DataFrame
        ``patient_id``, ``visit_id``, ``time`` (datetime64 or numeric) and optional columns;
        ``end_time`` (same kind as ``time``) and ``died`` (bool) are checked when present.
    codes : DataFrame
        ``visit_id``, ``vocabulary``, ``code`` and an optional ``time``. Visits may have no
        code (they still carry times and outcomes).
    validate : {"raise", "repair"}
        ``"raise"``: refuse bad input with a one-line :class:`DataError` naming the problem,
        its count, an example id and the fix. ``"repair"``: drop exact duplicate rows, sort
        visits by time, drop empty/blank codes, codes of unknown visits, visits of unknown
        patients or without a time, and patients without visits; fill missing demographics
        with ``"unknown"``; each repair is logged at INFO with its count (and kept in
        :attr:`repairs`). Conflicting rows with the same ``patient_id`` or ``visit_id`` are
        refused in both modes.

    Examples
    --------
    >>> import pandas as pd
    >>> static = pd.DataFrame({"patient_id": ["p1", "p2"], "sex": ["F", "M"]})
    >>> visits = pd.DataFrame({"patient_id": ["p1", "p1", "p2"], "visit_id": ["a", "b", "c"],
    ...                        "time": [1.0, 2.0, 1.0]})
    >>> codes = pd.DataFrame({"visit_id": ["a", "b", "b", "c"],
    ...                       "vocabulary": ["dx", "dx", "rx", "dx"],
    ...                       "code": ["401", "250", "insulin", "401"]})
    >>> cohort = Cohort(static, visits, codes)
    >>> cohort.n_patients, cohort.n_visits, cohort.vocabularies
    (2, 3, ['dx', 'rx'])
    >>> sorted(cohort.patients[0].visits[1].codes)
    ['dx:250', 'rx:insulin']
    """

    def __init__(
        self,
        static: pd.DataFrame,
        visits: pd.DataFrame,
        codes: pd.DataFrame,
        *,
        validate: Validate = "raise",
    ) -> None:
        if validate not in ("raise", "repair"):
            raise ConfigError(f"validate must be 'raise' or 'repair', got {validate!r}")
        self.static, self.visits, self.codes, self.repairs = validate_tables(
            static, visits, codes, validate
        )
        self._patients: list[Patient] | None = None

    # ------------------------------------------------------------------ views
    @property
    def n_patients(self) -> int:
        return len(self.static)

    @property
    def n_visits(self) -> int:
        return len(self.visits)

    @property
    def n_codes(self) -> int:
        """Number of code rows (a code recorded twice in one visit with two times counts twice)."""
        return len(self.codes)

    @property
    def vocabularies(self) -> list[str]:
        return sorted(self.codes["vocabulary"].unique().tolist())

    @property
    def time_kind(self) -> str:
        """``"datetime"`` or ``"numeric"``: the kind of ``visits.time``."""
        is_dt = pd.api.types.is_datetime64_any_dtype(self.visits["time"])
        return "datetime" if is_dt else "numeric"

    def tokens(self) -> pd.Series:
        """Token ``"vocabulary:code"`` of each row of :attr:`codes`."""
        return (self.codes["vocabulary"] + ":" + self.codes["code"]).rename("token")

    def visit_codes(self) -> dict[str, frozenset[str]]:
        """The set of tokens of each visit that has codes, by ``visit_id``."""
        grouped = self.tokens().groupby(self.codes["visit_id"].to_numpy(), sort=False)
        return {k: frozenset(v) for k, v in grouped}

    @property
    def patients(self) -> list[Patient]:
        """Patients in the order of :attr:`static`, each with visits in time order."""
        if self._patients is None:
            by_visit = self.visit_codes()
            empty: frozenset[str] = frozenset()
            visits = {
                pid: tuple(
                    VisitCodes(v, t, by_visit.get(v, empty))
                    for v, t in zip(g["visit_id"], g["time"], strict=True)
                )
                for pid, g in self.visits.groupby("patient_id", sort=False)
            }
            self._patients = [Patient(pid, visits[pid]) for pid in self.static["patient_id"]]
        return self._patients

    def select(self, patient_ids: Iterable[str]) -> Cohort:
        """The cohort of the given patients (in the order of :attr:`static`)."""
        keep = set(map(str, patient_ids))
        unknown = keep - set(self.static["patient_id"])
        if unknown:
            raise DataError(
                f"{len(unknown)} patient id(s) not in the cohort (e.g. {sorted(unknown)[0]!r})"
            )
        static = self.static[self.static["patient_id"].isin(keep)]
        visits = self.visits[self.visits["patient_id"].isin(keep)]
        codes = self.codes[self.codes["visit_id"].isin(visits["visit_id"])]
        return Cohort(static, visits, codes)

    def summary(self) -> pd.DataFrame:
        """Tidy statistics: ``statistic``, ``value``.

        Patients, visits, code rows and distinct codes (overall and per vocabulary), visits
        per patient and distinct codes per visit (mean and quantiles), visits without codes,
        and the share of patients in each value of every text column of ``static``.

        Examples
        --------
        >>> import pandas as pd
        >>> c = Cohort(pd.DataFrame({"patient_id": ["p"]}),
        ...            pd.DataFrame({"patient_id": ["p"], "visit_id": ["v"], "time": [0.0]}),
        ...            pd.DataFrame({"visit_id": ["v"], "vocabulary": ["dx"], "code": ["1"]}))
        >>> float(c.summary().set_index("statistic").loc["patients", "value"])
        1.0
        """
        rows: list[tuple[str, float]] = [
            ("patients", self.n_patients),
            ("visits", self.n_visits),
            ("code_rows", self.n_codes),
            ("distinct_codes", self.tokens().nunique()),
        ]
        for vocab, g in self.codes.groupby("vocabulary"):
            rows.append((f"code_rows[{vocab}]", len(g)))
            rows.append((f"distinct_codes[{vocab}]", g["code"].nunique()))
        per_patient = self.visits.groupby("patient_id").size()
        sets = self.visit_codes()
        per_visit = pd.Series([len(sets.get(v, ())) for v in self.visits["visit_id"]])
        for name, s in (("visits_per_patient", per_patient), ("codes_per_visit", per_visit)):
            rows.append((f"{name}_mean", s.mean()))
            for q in (0.0, 0.25, 0.5, 0.75, 1.0):
                rows.append((f"{name}_q{int(q * 100)}", s.quantile(q)))
        rows.append(("visits_without_codes", int((per_visit == 0).sum())))
        for col in self.static.columns.drop("patient_id"):
            s = self.static[col]
            if not is_text(s):
                continue
            shares = s.astype(str).value_counts(normalize=True)
            if len(shares) <= 50:
                rows.extend((f"share[{col}={value}]", share) for value, share in shares.items())
        out = pd.DataFrame(rows, columns=["statistic", "value"])
        out["value"] = out["value"].astype(float)
        return out

    def __repr__(self) -> str:
        return (
            f"Cohort({self.n_patients} patients, {self.n_visits} visits, {self.n_codes} codes, "
            f"vocabularies={self.vocabularies})"
        )

    # ------------------------------------------------------------------ files
    def to_parquet(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write the cohort to ``directory`` (three Parquet files and ``cohort.json``), atomically.

        An existing ``directory`` is replaced only with ``overwrite=True`` and only if it is an
        earlier cohort directory (holds ``cohort.json``) or empty.

        Examples
        --------
        >>> import tempfile, os, pandas as pd
        >>> c = Cohort(pd.DataFrame({"patient_id": ["p"]}),
        ...            pd.DataFrame({"patient_id": ["p"], "visit_id": ["v"], "time": [0.0]}),
        ...            pd.DataFrame({"visit_id": ["v"], "vocabulary": ["dx"], "code": ["1"]}))
        >>> path = c.to_parquet(os.path.join(tempfile.mkdtemp(), "cohort"))
        >>> Cohort.from_parquet(path).n_visits
        1
        """
        meta = {
            "format": "equisynth-cohort",
            "format_version": COHORT_FORMAT_VERSION,
            "n_patients": self.n_patients,
            "n_visits": self.n_visits,
            "n_codes": self.n_codes,
            "time_kind": self.time_kind,
            "vocabularies": self.vocabularies,
        }
        with atomic_output_dir(directory, overwrite, marker=_MARKER) as tmp:
            for name in _FILES:
                getattr(self, name).to_parquet(tmp / f"{name}.parquet", index=False)
            (tmp / _MARKER).write_text(json.dumps(meta, indent=2) + "\n")
        return Path(directory)

    @classmethod
    def from_parquet(cls, directory: str | Path, *, validate: Validate = "raise") -> Cohort:
        """Read a cohort written by :meth:`to_parquet`.

        ``validate`` as in the constructor: ``"raise"`` (the default; a directory written by
        :meth:`to_parquet` always passes) or ``"repair"`` for a directory edited by hand.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise InputFileError(
                f"cohort directory '{directory}' does not exist; give a directory written by "
                "Cohort.to_parquet"
            )
        try:
            meta = json.loads((directory / _MARKER).read_text())
        except (OSError, ValueError) as exc:
            raise InputFileError(
                f"'{directory}' is not a cohort directory: cannot read {_MARKER} "
                f"({type(exc).__name__}); give a directory written by Cohort.to_parquet"
            ) from None
        version = meta.get("format_version") if isinstance(meta, dict) else None
        if not isinstance(meta, dict) or meta.get("format") != "equisynth-cohort":
            raise InputFileError(f"'{directory / _MARKER}' does not describe an equisynth cohort")
        if version != COHORT_FORMAT_VERSION:
            raise InputFileError(
                f"cohort '{directory}' has format version {version!r}; this equisynth reads "
                f"version {COHORT_FORMAT_VERSION}; rewrite it with a matching equisynth"
            )
        tables = {}
        for name in _FILES:
            path = directory / f"{name}.parquet"
            try:
                tables[name] = pd.read_parquet(path)
            except Exception as exc:  # pyarrow raises its own error types
                raise InputFileError(
                    f"cannot read '{path}' ({type(exc).__name__}); the cohort directory is "
                    "incomplete or damaged, write it again"
                ) from None
        return cls(tables["static"], tables["visits"], tables["codes"], validate=validate)
