"""Reading and writing tables and output directories safely.

Inputs are never modified. Outputs are written atomically: a temporary file (or
directory) next to the destination is filled, flushed to disk and renamed into
place, so an interrupted run never leaves a half-written file, and an existing
output is only replaced when ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from equisynth.exceptions import InputFileError, OutputExistsError

__all__ = ["SUPPORTED_EXTENSIONS", "atomic_output_dir", "read_table", "table_format", "write_table"]

#: File name endings accepted by :func:`read_table` / :func:`write_table`.
SUPPORTED_EXTENSIONS = (".csv", ".csv.gz", ".tsv", ".parquet")


def table_format(path: str | Path) -> str:
    """The format of ``path`` from its name: ``"csv"``, ``"csv.gz"``, ``"tsv"`` or ``"parquet"``.

    Examples
    --------
    >>> table_format("cohort.csv.gz")
    'csv.gz'
    """
    name = Path(path).name.lower()
    for ext in sorted(SUPPORTED_EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return ext[1:]
    suffix = "".join(Path(path).suffixes) or "(none)"
    raise InputFileError(
        f"'{path}' has extension {suffix}; expected one of {', '.join(SUPPORTED_EXTENSIONS)}"
    )


def read_table(path: str | Path, *, na_values: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a CSV, gzipped CSV, TSV or Parquet file into a DataFrame.

    Parameters
    ----------
    path : str or Path
        The file; the format comes from the extension.
    na_values : sequence of str, optional
        Extra strings read as missing (CSV/TSV only).

    Raises
    ------
    InputFileError
        Unknown extension, missing file, a directory, no permission, an empty file
        (0 bytes or a header without rows) or a file that cannot be parsed.

    Examples
    --------
    >>> import pandas as pd, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> pd.DataFrame({"a": [1.25, 2.5]}).to_csv(p, index=False)
    >>> read_table(p)["a"].tolist()
    [1.25, 2.5]
    """
    path = Path(path)
    fmt = table_format(path)
    if not path.exists():
        raise InputFileError(f"input file '{path}' does not exist; check the path")
    if path.is_dir():
        raise InputFileError(f"input '{path}' is a directory; give a table file ({fmt})")
    if not os.access(path, os.R_OK):
        raise InputFileError(
            f"input file '{path}' is not readable (permission denied); fix its permissions"
        )
    if path.stat().st_size == 0:
        raise InputFileError(f"input file '{path}' is empty (0 bytes) and has no data rows")
    try:
        if fmt == "parquet":
            df = pd.read_parquet(path)
        else:
            sep = "\t" if fmt == "tsv" else ","
            df = pd.read_csv(
                path, sep=sep, na_values=na_values, low_memory=False, float_precision="round_trip"
            )
    except pd.errors.EmptyDataError:
        raise InputFileError(f"input file '{path}' has no columns and no data rows") from None
    except PermissionError:
        raise InputFileError(
            f"input file '{path}' is not readable (permission denied); fix its permissions"
        ) from None
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as exc:
        detail = " ".join(str(exc).split())[:160]
        raise InputFileError(
            f"cannot read '{path}' as {fmt} ({type(exc).__name__}: {detail}); "
            "check that the file is a valid, UTF-8 encoded table of that format"
        ) from None
    except Exception as exc:  # pyarrow raises its own error types on garbage
        detail = " ".join(str(exc).split())[:160]
        raise InputFileError(
            f"cannot read '{path}' as {fmt} ({type(exc).__name__}: {detail}); "
            "check that the file is a valid table of that format"
        ) from None
    if len(df) == 0:
        raise InputFileError(f"input file '{path}' has a header but no data rows")
    return df


def _check_output_target(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise OutputExistsError(f"output '{path}' exists; pass --overwrite or choose another path")
    parent = path.parent
    if not parent.is_dir():
        raise InputFileError(f"output directory '{parent}' does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputFileError(f"output directory '{parent}' is not writable; choose another path")


def write_table(df: pd.DataFrame, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``df`` atomically to ``path`` (format by extension), without its index.

    CSV values are written with full precision (no ``float_format``), so reading the
    file back gives the same values.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    InputFileError
        Unknown extension, or the output directory is missing or not writable.

    Examples
    --------
    >>> import pandas as pd, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "out.parquet")
    >>> write_table(pd.DataFrame({"a": [1]}), p).name
    'out.parquet'
    """
    path = Path(path)
    fmt = table_format(path)
    _check_output_target(path, overwrite)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            if fmt == "parquet":
                df.to_parquet(fh, index=False)
            elif fmt == "csv.gz":
                df.to_csv(fh, index=False, compression="gzip")
            else:
                df.to_csv(fh, index=False, sep="\t" if fmt == "tsv" else ",")
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists() and not overwrite:  # appeared meanwhile
            raise OutputExistsError(
                f"output '{path}' exists; pass --overwrite or choose another path"
            )
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


@contextlib.contextmanager
def atomic_output_dir(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Build a directory output in a temporary sibling and rename it to ``path`` at the end.

    On any exception the temporary directory is removed and ``path`` is left as it was.

    Examples
    --------
    >>> import tempfile, os
    >>> root = tempfile.mkdtemp()
    >>> with atomic_output_dir(os.path.join(root, "model")) as tmp:
    ...     _ = (tmp / "config.json").write_text("{}")
    >>> sorted(os.listdir(os.path.join(root, "model")))
    ['config.json']
    """
    path = Path(path)
    _check_output_target(path, overwrite)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            if not overwrite:
                raise OutputExistsError(
                    f"output '{path}' exists; pass --overwrite or choose another path"
                )
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
