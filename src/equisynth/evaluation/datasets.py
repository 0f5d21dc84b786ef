"""Dataset loaders for the experiments: the MCRAGE paper's table and the demo table.

The demo table is the kidney-transplant cohort that ships with ``lifelines``
(``lifelines.datasets.load_kidney_transplant``; 863 patients of the Ohio State
University Medical Center, 1982-1992, from Klein & Moeschberger, "Survival
Analysis", section 1.7). lifelines does not ship ACTG 175, and this is the only
real clinical table in it with both race and sex. Its indicator columns are
decoded into ``race`` (black/white) and ``sex`` (female/male); the outcome is
``death`` (16% died during follow-up). The follow-up ``time`` is dropped: it ends at
death, so it would leak the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from equisynth.exceptions import DataError, InputFileError

__all__ = [
    "PATIENT_TREATMENT_COLUMNS",
    "Dataset",
    "load_kidney_transplant",
    "load_patient_treatment",
    "read_table",
    "resolve_positive",
]

PATIENT_TREATMENT_COLUMNS = (
    "HAEMATOCRIT",
    "HAEMOGLOBINS",
    "ERYTHROCYTE",
    "LEUCOCYTE",
    "THROMBOCYTE",
    "MCH",
    "MCHC",
    "MCV",
    "AGE",
    "SEX",
    "SOURCE",
)


@dataclass(frozen=True)
class Dataset:
    """A table with its experiment roles.

    Attributes
    ----------
    frame : DataFrame
    target : str
        Outcome column.
    positive : object
        Positive class of ``target``.
    sensitive : tuple of str
        Sensitive attributes (fairlearn's ``sensitive_features``).
    name : str
    source : str
        Where the data come from (for reports).
    """

    frame: pd.DataFrame
    target: str
    positive: object
    sensitive: tuple[str, ...]
    name: str = "data"
    source: str = ""
    group_col: str | None = field(default=None)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV (optionally gzipped) or Parquet file; a bad path is an :class:`InputFileError`."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"input file {str(path)!r} does not exist; check the path")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            df = pd.read_parquet(path)
        elif name.endswith((".csv", ".csv.gz", ".txt")):
            df = pd.read_csv(path)
        else:
            raise InputFileError(
                f"unknown format of {str(path)!r}; expected a .csv, .csv.gz or .parquet file"
            )
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, InputFileError):
            raise
        raise InputFileError(f"could not read {str(path)!r}: {exc}") from exc
    if df.empty:
        raise InputFileError(f"input file {str(path)!r} holds no rows")
    return df


def load_patient_treatment(path: str | Path) -> Dataset:
    """The MCRAGE paper's table (Sadikin 2020): target ``SOURCE`` (positive ``"in"``), sensitive ``SEX``.

    Parameters
    ----------
    path : str or Path
        ``patient_treatment.csv`` (see the README for where to download it).
    """
    df = read_table(path)
    missing = [c for c in ("SEX", "SOURCE") if c not in df.columns]
    if missing:
        raise DataError(
            f"{str(path)!r} lacks column(s) {missing}; expected the patient-treatment table "
            f"with columns {list(PATIENT_TREATMENT_COLUMNS)}"
        )
    return Dataset(
        frame=df,
        target="SOURCE",
        positive="in",
        sensitive=("SEX",),
        name="patient_treatment",
        source="Sadikin 2020, EHR dataset for patient treatment classification (Mendeley Data)",
    )


def load_kidney_transplant() -> Dataset:
    """The demo table: lifelines' kidney-transplant cohort, strata race x sex x death.

    Examples
    --------
    >>> ds = load_kidney_transplant()
    >>> list(ds.frame.columns), ds.target, ds.sensitive
    (['age', 'race', 'sex', 'death'], 'death', ('race', 'sex'))
    """
    from lifelines.datasets import load_kidney_transplant as _load

    raw = _load()
    black = (raw["black_male"] + raw["black_female"]) > 0
    male = (raw["black_male"] + raw["white_male"]) > 0
    frame = pd.DataFrame(
        {
            "age": raw["age"].astype("int64"),
            "race": black.map({True: "black", False: "white"}).astype(object),
            "sex": male.map({True: "male", False: "female"}).astype(object),
            "death": raw["death"].astype("int64"),
        }
    )
    return Dataset(
        frame=frame,
        target="death",
        positive=1,
        sensitive=("race", "sex"),
        name="kidney_transplant",
        source=(
            "lifelines.datasets.load_kidney_transplant (Klein & Moeschberger, Survival Analysis, "
            "sec. 1.7); follow-up time dropped because it leaks the outcome"
        ),
    )


def resolve_positive(df: pd.DataFrame, target: str, positive: str | None = None):
    """The positive class of ``target`` as a value of the column, from a command-line string.

    ``positive`` is matched against the string form of the column's values. Without
    it: ``1`` / ``True`` when the column is 0/1 or boolean, else the rarer class.

    Examples
    --------
    >>> df = pd.DataFrame({"y": [0, 1, 1]})
    >>> resolve_positive(df, "y", "1"), resolve_positive(df, "y")
    (1, 1)
    """
    if target not in df.columns:
        raise DataError(
            f"target column {target!r} not in the table; available columns: {list(df.columns)}"
        )
    counts = df[target].dropna().value_counts()
    levels = list(counts.index)
    if positive is not None:
        for level in levels:
            if str(level) == str(positive):
                return level
        raise DataError(
            f"--positive {positive!r} is not a value of target column {target!r}; "
            f"its values are {sorted(map(str, levels))[:10]}"
        )
    if len(levels) != 2:
        raise DataError(
            f"target column {target!r} must have 2 classes, got {len(levels)}: {sorted(map(str, levels))[:10]}"
        )
    for level in levels:
        if level is True or (not isinstance(level, str) and level == 1):
            return level
    return counts.index[-1]
