"""Privacy guard of ``rebalance``: synthetic rows that copy a real patient exactly.

A generator that memorises its training rows leaks them: an exact copy of a real patient in
a "synthetic" table is that patient's record. ``rebalance`` counts such rows and warns; with
``--drop-copies`` it removes them. ``--drop-closer-than D`` removes every synthetic row within
distance ``D`` of a real row (exact copies included), with
:func:`~equisynth.evaluation.quality.privacy.drop_close_copies`.

"Exact copy" means what :func:`equisynth.evaluation.quality.privacy.drop_close_copies` with
``threshold=0`` means (numeric values equal, categorical labels equal as text so that 1, 1.0
and "1" agree, missing equal to missing), but it is found by hashing the rows instead of a
nearest-neighbour search over one-hot features, which took minutes on a 20,000-row table with
many categories (``benchmarks/bench_copy_guard.py``); a test checks that both flag the same rows.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from equisynth.exceptions import ConfigError

__all__ = ["check_drop_copies_option", "drop_near_copies", "exact_copy_mask", "guard_copies"]

logger = logging.getLogger("equisynth.cli.rebalance")


def check_drop_copies_option(
    method: str, drop_copies: bool, drop_closer_than: float | None = None
) -> None:
    """Refuse ``--drop-copies`` / ``--drop-closer-than`` with ``--method random`` (every row
    it adds is a copy) and a distance that is not finite and >= 0."""
    if drop_closer_than is not None and not (
        np.isfinite(drop_closer_than) and drop_closer_than >= 0
    ):
        raise ConfigError(
            f"--drop-closer-than must be a finite distance >= 0, got {drop_closer_than!r}"
        )
    flag = "--drop-copies" if drop_copies else "--drop-closer-than"
    if (drop_copies or drop_closer_than is not None) and method == "random":
        raise ConfigError(
            f"{flag} with --method random would remove every synthetic row (random "
            "oversampling duplicates real rows by design); use --method mcrage or smote"
        )


def _canonical(values: pd.Series, numeric: bool) -> pd.Series:
    from equisynth.evaluation.quality._features import _as_labels

    if numeric:
        return pd.to_numeric(values, errors="coerce").astype("float64")
    return _as_labels(values).astype(str)


def exact_copy_mask(real: pd.DataFrame, synth: pd.DataFrame) -> np.ndarray:
    """True for each row of ``synth`` equal to some row of ``real`` on ``real``'s columns.

    Examples
    --------
    >>> real = pd.DataFrame({"x": [1.0, 2.0], "g": ["a", "b"]})
    >>> exact_copy_mask(real, pd.DataFrame({"x": [1, 1], "g": ["a", "b"]})).tolist()
    [True, False]
    """
    from equisynth.evaluation.quality._features import categorical_columns

    columns = list(real.columns)
    categorical = set(categorical_columns(real))
    keys = []
    for frame in (real, synth):
        canon = pd.DataFrame(
            {str(i): _canonical(frame[c], c not in categorical) for i, c in enumerate(columns)}
        )
        keys.append(pd.util.hash_pandas_object(canon, index=False).to_numpy())
    return np.isin(keys[1], keys[0])


def guard_copies(
    real: pd.DataFrame, synth: pd.DataFrame, *, drop: bool, method: str = "mcrage"
) -> pd.DataFrame:
    """Warn about synthetic rows equal to a real row (all columns); drop them if ``drop``.

    Parameters
    ----------
    real, synth : DataFrame
        Same columns (``synth`` may have more; only ``real``'s columns are compared).
    drop : bool
        Remove the copies from the returned synthetic rows.
    method : str
        Resampling method, named in the warning.

    Returns
    -------
    DataFrame
        ``synth`` (all rows, or without the copies when ``drop``), index reset.

    Examples
    --------
    >>> real = pd.DataFrame({"x": [1.0, 2.0], "g": ["a", "b"]})
    >>> synth = pd.DataFrame({"x": [1.0, 1.5], "g": ["a", "a"]})
    >>> guard_copies(real, synth, drop=True)["x"].tolist()
    [1.5]
    """
    if len(synth) == 0 or len(real) == 0:
        return synth
    dropped = exact_copy_mask(real, synth)
    n_copies = int(dropped.sum())
    if n_copies == 0:
        return synth
    share = n_copies / len(synth)
    if drop:
        logger.warning(
            "dropped %d of %d synthetic rows (%.1f%%) that exactly copy a real row (--drop-copies); "
            "the rebalanced strata are short by that many rows",
            n_copies,
            len(synth),
            100 * share,
        )
        return synth.loc[~dropped].reset_index(drop=True)
    why = " (random oversampling duplicates real rows by design)" if method == "random" else ""
    logger.warning(
        "%d of %d synthetic rows (%.1f%%) exactly copy a real row%s; they disclose those "
        "patients' records: pass --drop-copies to remove them",
        n_copies,
        len(synth),
        100 * share,
        why,
    )
    return synth


def drop_near_copies(real: pd.DataFrame, synth: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Drop the synthetic rows within distance ``threshold`` of a real row (on ``real``'s columns).

    The distance is that of the privacy metrics (robust-scaled numeric, one-hot categorical,
    :func:`~equisynth.evaluation.quality.privacy.drop_close_copies`); ``threshold=0`` drops the
    exact copies. A nearest-neighbour search: slower than the exact-copy hash on wide tables.

    Examples
    --------
    >>> real = pd.DataFrame({"x": [0.0, 2.0, 4.0, 6.0, 8.0], "g": ["a", "a", "a", "b", "b"]})
    >>> synth = pd.DataFrame({"x": [2.0, 2.1, 3.0], "g": ["a", "a", "a"]})
    >>> drop_near_copies(real, synth, 0.0)["x"].tolist()  # the exact copy
    [2.1, 3.0]
    >>> drop_near_copies(real, synth, 0.1)["x"].tolist()
    [3.0]
    """
    from equisynth.evaluation.quality.privacy import drop_close_copies

    if len(synth) == 0 or len(real) == 0:
        return synth
    columns = list(real.columns)
    _, dropped = drop_close_copies(synth[columns], real, threshold=threshold)
    n_dropped = int(dropped.sum())
    if n_dropped:
        logger.warning(
            "dropped %d of %d synthetic rows (%.1f%%) within distance %g of a real row "
            "(--drop-closer-than); the rebalanced strata are short by that many rows",
            n_dropped,
            len(synth),
            100 * n_dropped / len(synth),
            threshold,
        )
    return synth.loc[~dropped].reset_index(drop=True)
