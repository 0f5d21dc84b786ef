"""Shared pieces of the reliability tests: case counter, time limit, hostile-table strategies.

Hypothesis runs derandomized (a fixed sequence of examples) so that CI is stable; the number
of cases each fuzz test tried is printed at the end of the pytest run (see ``conftest.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import string
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: cases tried per (fuzz target, outcome), reported by ``pytest_terminal_summary`` in conftest.py
CASES: Counter = Counter()

#: ``EQUISYNTH_FUZZ_SCALE=10`` multiplies every test's number of cases; ``EQUISYNTH_FUZZ_RANDOM=1``
#: draws fresh random cases instead of CI's fixed sequence (for long exploratory runs).
SCALE = float(os.environ.get("EQUISYNTH_FUZZ_SCALE", "1"))
RANDOM = os.environ.get("EQUISYNTH_FUZZ_RANDOM") == "1"

FUZZ = settings(
    derandomize=not RANDOM,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz(max_examples: int) -> settings:
    """The fuzz settings with ``max_examples`` cases (times ``EQUISYNTH_FUZZ_SCALE``)."""
    return settings(FUZZ, max_examples=max(1, int(max_examples * SCALE)))


def record(target: str, outcome: str) -> None:
    """Count one case of ``target`` that ended with ``outcome`` ("result" or "clean error")."""
    CASES[(target, outcome)] += 1


class CaseTimeout(AssertionError):
    """A fuzz case ran past its time limit (a hang is a bug)."""


@contextlib.contextmanager
def time_limit(seconds: int):
    """Fail the case with :class:`CaseTimeout` after ``seconds`` (SIGALRM, main thread)."""

    def _raise(signum, frame):
        raise CaseTimeout(f"case ran longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def digest(path: Path) -> str | None:
    path = Path(path)
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if path.is_dir():
        return hashlib.sha256(
            b"".join(
                str(p.relative_to(path)).encode() + p.read_bytes()
                for p in sorted(path.rglob("*"))
                if p.is_file()
            )
        ).hexdigest()
    return None


def leftovers(directory: Path, name: str) -> list[str]:
    """Hidden temporary siblings (``.NAME.*``) that a write left behind."""
    return [p.name for p in Path(directory).iterdir() if p.name.startswith(f".{name}.")]


# ---------------------------------------------------------------- hostile tables
WEIRD_NAMES = st.sampled_from(
    [
        "",
        " ",
        "é-ü-ß",
        "患者",
        "🙂 emoji",
        "a,b",
        'q"uote',
        "new\nline",
        "tab\tname",
        "x" * 2000,
        "0",
        "NaN",
        "None",
        "is_synthetic",
        "__missing",
        "=cmd|' /C calc'!A0",
    ]
)

NUMERIC_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, np.nan, np.inf, -np.inf]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
)

TEXT_VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "NA", "null", "?", "None", "1", "1.0", "\x00", "é", "a,b", '"']),
)

MIXED_VALUES = st.one_of(
    NUMERIC_VALUES, TEXT_VALUES, st.none(), st.booleans(), st.just(pd.NA), st.just(pd.NaT)
)


def _valid_base(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": np.round(rng.normal(50, 10, n), 2),
            "k": rng.integers(0, 9, n),
            "c": rng.choice(["a", "b", "c"], n),
            "s": rng.choice(["F", "M"], n),
            "y": (rng.random(n) < 0.4).astype(int),
        }
    )


MUTATIONS = (
    "none",
    "nan_numeric",
    "inf_numeric",
    "huge_numeric",
    "all_nan_column",
    "mixed_types",
    "many_categories",
    "weird_names",
    "duplicate_names",
    "long_names",
    "nan_target",
    "nan_sensitive",
    "one_class",
    "three_classes",
    "constant_column",
    "bool_column",
    "object_numbers",
    "empty_strings",
    "datetime_column",
    "int_column_names",
    "single_stratum",
    "unicode_values",
    "nullable_dtypes",
    "category_dtype",
)


RENAMING = ("weird_names", "duplicate_names", "long_names", "int_column_names")


def _set(df: pd.DataFrame, rows: list[int], col: str, value) -> None:
    """``df.loc[rows, col] = value`` without pandas' dtype complaints (float or object column)."""
    numeric = isinstance(value, float) and pd.api.types.is_numeric_dtype(df[col])
    values = df[col].astype(float if numeric else object)
    values.iloc[rows] = value
    df[col] = values


@st.composite
def hostile_tables(draw, *, max_rows: int = 40):
    """A (DataFrame, target, sensitive) triple: a valid table with 0-3 hostile mutations.

    Value mutations come first, renaming mutations last, so every mutation finds its column.
    """
    n = draw(st.sampled_from([0, 1, 2, 3, 8, max_rows, max_rows, max_rows]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    df = _valid_base(n, rng)
    target, sensitive = "y", "s"
    mutations = draw(st.lists(st.sampled_from(MUTATIONS), min_size=0, max_size=3, unique=True))
    mutations.sort(key=lambda m: m in RENAMING)
    for mutation in mutations:
        if n == 0:
            break
        rows = sorted(
            set(draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=max(1, n // 2))))
        )
        if mutation == "nan_numeric":
            _set(df, rows, "x", np.nan)
        elif mutation == "inf_numeric":
            _set(df, rows, "x", draw(st.sampled_from([np.inf, -np.inf])))
        elif mutation == "huge_numeric":
            _set(df, rows, "x", draw(st.sampled_from([1e308, -1e308, 1e300, 5e-324])))
        elif mutation == "all_nan_column":
            df["x"] = np.nan
        elif mutation == "mixed_types":
            col = draw(st.sampled_from(["x", "k", "c"]))
            values = draw(st.lists(MIXED_VALUES, min_size=len(rows), max_size=len(rows)))
            column = df[col].astype(object)
            for r, v in zip(rows, values, strict=True):
                column.iloc[r] = v
            df[col] = column
        elif mutation == "many_categories":
            df["c"] = [f"level-{i}-{rng.integers(1_000_000)}" for i in range(n)]
            if draw(st.booleans()):
                df["k"] = np.arange(n) * 7919  # an id-like integer column
        elif mutation == "nan_target":
            _set(df, rows, target, np.nan)
        elif mutation == "nan_sensitive":
            _set(df, rows, sensitive, None)
        elif mutation == "one_class":
            df[target] = 1
        elif mutation == "three_classes":
            df.loc[rows, target] = 2
        elif mutation == "constant_column":
            df["x"] = 3.25
        elif mutation == "bool_column":
            df["b"] = rng.random(n) < 0.5
        elif mutation == "object_numbers":
            df["x"] = df["x"].astype(str)
        elif mutation == "empty_strings":
            _set(df, rows, "c", "")
        elif mutation == "datetime_column":
            df["d"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 999, n), "D")
        elif mutation == "single_stratum":
            df[target] = 0
            df[sensitive] = "F"
        elif mutation == "unicode_values":
            text = string.printable + "éü患🙂\u200b"
            _set(df, rows, "c", draw(st.text(alphabet=text, max_size=8)))
        elif mutation == "nullable_dtypes":  # Int64 / Float64 / string / boolean with pd.NA
            df = df.convert_dtypes()
            col = draw(st.sampled_from(["x", "k", "c"]))
            if col in df.columns:
                column = df[col].copy()
                column.iloc[rows] = pd.NA
                df[col] = column
        elif mutation == "category_dtype":
            col = draw(st.sampled_from(["c", sensitive]))
            if col in df.columns:
                df[col] = df[col].astype("category")
        elif mutation == "weird_names":
            new = draw(WEIRD_NAMES)
            which = draw(st.sampled_from(["x", "c", sensitive, target]))
            if new in df.columns or which not in df.columns:
                continue
            df = df.rename(columns={which: new})
            target = new if which == target else target
            sensitive = new if which == sensitive else sensitive
        elif mutation == "duplicate_names":
            df.columns = [df.columns[0], df.columns[0], *df.columns[2:]]
        elif mutation == "long_names":
            if "c" in df.columns:
                df = df.rename(columns={"c": "L" * draw(st.sampled_from([256, 5000]))})
        elif mutation == "int_column_names":
            df.columns = list(range(df.shape[1]))
            target, sensitive = df.columns[-1], df.columns[-2]
    return df, target, sensitive


GARBAGE_FILES = st.one_of(
    st.binary(max_size=400),
    st.sampled_from(
        [
            b"\xef\xbb\xbfa,b,y\n1,2,0\n3,4,1\n",  # UTF-8 BOM
            b"\xff\xfea\x00,\x00b\x00\n\x001\x00,\x002\x00\n\x00",  # UTF-16 LE
            b'a,b,y\n"1,2,0\n3,4,1\n',  # unterminated quote
            b'a,b,y\n1,"2"x,0\n3,4,1\n',  # garbage after quote
            b"a,b,y\n1,2,0,9,9\n3,4\n",  # ragged rows
            b"a,b,y\r\n1,2,0\r3,4,1\n",  # mixed line endings
            b"a,b,y\n1,2\x00,0\n",  # NUL byte
            b"caf\xe9,b,y\n1,2,0\n",  # latin-1
            b"a;b;y\n1;2;0\n",  # wrong separator
            b"a,a,a\n1,2,3\n",  # duplicated header
            b",,\n,,\n",  # empty header names
            b"\n\n\n",  # blank lines only
            b"PAR1\x00\x00garbage",  # parquet magic, garbage body
            b"a\n" + b"9" * 100_000 + b"\n",  # a 100 kB number
            b"x,y\n" + b"1,0\n" * 3 + b"1e999,1\n",  # overflow to inf
        ]
    ),
)
