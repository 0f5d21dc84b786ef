"""Dataset loaders for the experiments: the MCRAGE paper's table and the demo table.

The demo table is ACTG 175 (Hammer et al., NEJM 1996; AIDS Clinical Trials Group
study 175: 2,139 HIV-infected adults randomised to four antiretroviral regimens),
which ships with ``lifelines`` as ``lifelines/datasets/ACTG175.csv``. The outcome is
``cens`` (1 = an AIDS-defining event, a CD4 decline or death during follow-up, 24%);
the sensitive attributes are ``race`` (white / non-white) and ``gender``
(female / male), decoded from their 0/1 codes. Dropped: the row number and
``pidnum`` (ids), ``days`` (time to the event or censoring: it leaks the outcome), and
the post-baseline measurements ``cd420``, ``cd820``, ``cd496``, ``r`` (whether
``cd496`` was measured) and ``offtrt`` (went off treatment before 96 weeks): they are
observed after randomisation, partly after the event, so a model using them predicts
the outcome from its consequences. ``zprior`` (constant) is dropped too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from equisynth.exceptions import DataError
from equisynth.io import read_table

__all__ = [
    "ACTG175_DROPPED",
    "PATIENT_TREATMENT_COLUMNS",
    "Dataset",
    "load_actg175",
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


#: ACTG 175 columns left out of the demo table, and why (see the module docstring).
ACTG175_DROPPED = {
    "pidnum": "patient id",
    "days": "time to event or censoring: leaks the outcome",
    "cd420": "CD4 count at 20 weeks: post-baseline",
    "cd820": "CD8 count at 20 weeks: post-baseline",
    "cd496": "CD4 count at 96 weeks: post-baseline, often missing",
    "r": "whether cd496 was measured: post-baseline",
    "offtrt": "went off treatment before 96 weeks: post-baseline",
    "zprior": "constant (all 1)",
}


def load_actg175() -> Dataset:
    """The demo table: ACTG 175 from lifelines, strata race x gender x outcome.

    Baseline columns only (see :data:`ACTG175_DROPPED`); ``race`` and ``gender`` are
    decoded to ``white``/``non-white`` and ``female``/``male``; the target ``cens`` is 0/1.

    Examples
    --------
    >>> ds = load_actg175()
    >>> ds.frame.shape, ds.target, ds.sensitive
    ((2139, 19), 'cens', ('race', 'gender'))
    >>> ds.frame.groupby(["race", "gender"]).size().to_dict()
    {('non-white', 'female'): 213, ('non-white', 'male'): 404, ('white', 'female'): 155, ('white', 'male'): 1367}
    """
    from importlib import resources

    source = resources.files("lifelines") / "datasets" / "ACTG175.csv"
    with resources.as_file(source) as path:
        raw = pd.read_csv(path, index_col=0)
    frame = raw.drop(columns=[c for c in ACTG175_DROPPED if c in raw.columns])
    frame["race"] = frame["race"].map({0: "white", 1: "non-white"}).astype(object)
    frame["gender"] = frame["gender"].map({0: "female", 1: "male"}).astype(object)
    return Dataset(
        frame=frame.reset_index(drop=True),
        target="cens",
        positive=1,
        sensitive=("race", "gender"),
        name="actg175",
        source=(
            "ACTG 175 (Hammer et al., NEJM 1996) as shipped with lifelines; baseline columns "
            "only: days, cd420, cd820, cd496, r, offtrt and ids dropped (outcome leak / "
            "post-baseline)"
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
