"""Loaders that turn EHR sources into a :class:`~equisynth.data.cohort.Cohort`.

- :func:`load_mimic3`: MIMIC-III tables (admissions are visits);
- :func:`load_synthea`: a Synthea CSV export (encounters are visits);
- :func:`load_events`: a generic long event table plus a static table;
- :func:`load_source`: one of the above from a ``"kind:PATH"`` string (the CLI's ``--data``).
"""

from __future__ import annotations

from pathlib import Path

from equisynth.data.cohort import Cohort, Validate
from equisynth.data.loaders._tables import AGE_BINS, age_group
from equisynth.data.loaders.events import load_events
from equisynth.data.loaders.mimic3 import MIMIC3_VOCABULARIES, ethnicity_group, load_mimic3
from equisynth.data.loaders.synthea import SYNTHEA_VOCABULARIES, load_synthea
from equisynth.exceptions import DataError, InputFileError

__all__ = [
    "AGE_BINS",
    "MIMIC3_VOCABULARIES",
    "SOURCE_KINDS",
    "SYNTHEA_VOCABULARIES",
    "age_group",
    "ethnicity_group",
    "load_events",
    "load_mimic3",
    "load_source",
    "load_synthea",
]

#: Prefixes accepted by :func:`load_source`.
SOURCE_KINDS = ("synthea", "mimic3", "cohort")


def load_source(spec: str, *, validate: Validate = "repair") -> Cohort:
    """Load ``"synthea:PATH"``, ``"mimic3:PATH"`` or ``"cohort:PATH"`` (a :meth:`Cohort.to_parquet`
    directory) with the loader's defaults; ``validate`` is passed to the loader or to
    :meth:`Cohort.from_parquet` (the CLI uses the default, ``"repair"``, for every kind, so a
    hand-edited cohort directory is repaired and logged like a raw export).

    Raises
    ------
    DataError
        No or an unknown prefix.
    InputFileError
        ``PATH`` does not exist (or the loader cannot read it).

    Examples
    --------
    >>> load_source("csv:cohort.csv")
    Traceback (most recent call last):
    ...
    equisynth.exceptions.DataError: unknown data source kind 'csv' in 'csv:cohort.csv'; expected synthea:PATH, mimic3:PATH or cohort:PATH
    """
    kind, sep, path = str(spec).partition(":")
    kind = kind.strip().lower()
    expected = ", ".join(f"{k}:PATH" for k in SOURCE_KINDS[:-1]) + f" or {SOURCE_KINDS[-1]}:PATH"
    if not sep or kind not in SOURCE_KINDS:
        what = f"unknown data source kind {kind!r} in" if sep else "no data source kind in"
        raise DataError(f"{what} {spec!r}; expected {expected}")
    if not path.strip():
        raise InputFileError(f"data source {spec!r} has no path; expected {expected}")
    path = Path(path.strip()).expanduser()
    if not path.exists():
        raise InputFileError(f"data source path '{path}' (from {spec!r}) does not exist; check it")
    if kind == "synthea":
        return load_synthea(path, validate=validate)
    if kind == "mimic3":
        return load_mimic3(path, validate=validate)
    return Cohort.from_parquet(path, validate=validate)
