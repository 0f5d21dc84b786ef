"""Reading and writing tables and output directories safely.

Inputs are never modified. Outputs are written atomically: a temporary file (or
directory) next to the destination is filled, flushed to disk and renamed into
place, so an interrupted run never leaves a half-written file, and an existing
output is only replaced when ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from equisynth.exceptions import EquisynthError, InputFileError, OutputError, OutputExistsError

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "atomic_output_dir",
    "check_output_path",
    "read_table",
    "table_format",
    "temp_dir",
    "temp_file",
    "write_table",
]


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def temp_file(directory: str | Path, prefix: str, suffix: str = ".tmp") -> tuple[int, str]:
    """:func:`tempfile.mkstemp` whose file gets the usual permissions (``0o666 & ~umask``).

    mkstemp creates files readable by their owner only; an output renamed from it would keep
    that mode, unlike a file the user writes any other way.
    """
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, name


def temp_dir(directory: str | Path, prefix: str, suffix: str = ".tmp") -> Path:
    """:func:`tempfile.mkdtemp` whose directory gets the usual permissions (``0o777 & ~umask``)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=directory))
    path.chmod(0o777 & ~_umask())
    return path


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
    try:  # a real probe: os.access says yes to root on read-only and kernel filesystems
        with tempfile.TemporaryFile(prefix=f".{path.name}.", suffix=".tmp", dir=parent):
            pass
    except OSError as exc:
        raise OutputError(
            f"output directory '{parent}' is not writable ({exc.strerror or exc}); "
            "choose another path"
        ) from None


def _check_replaceable(path: Path, marker: str | None) -> None:
    if path.exists() and marker is not None:
        replaceable = path.is_dir() and (not any(path.iterdir()) or (path / marker).is_file())
        if not replaceable:
            raise OutputExistsError(
                f"output '{path}' exists and is not an earlier output of this command; "
                "refusing to replace it, choose another path"
            )


def check_output_path(
    path: str | Path, *, overwrite: bool = False, marker: str | None = None
) -> Path:
    """Fail early (before any long computation) if ``path`` cannot be written.

    Raises :class:`OutputExistsError` if it exists and ``overwrite`` is False (or, with
    ``marker``, if it is not a directory holding ``marker``, see :func:`atomic_output_dir`),
    :class:`InputFileError` if its directory does not exist and :class:`OutputError` if the
    directory is not writable (probed by creating and removing a temporary file).

    Examples
    --------
    >>> import tempfile, os
    >>> check_output_path(os.path.join(tempfile.mkdtemp(), "out.csv")).name
    'out.csv'
    """
    path = Path(path)
    _check_output_target(path, overwrite)
    _check_replaceable(path, marker)
    return path


def _write_failed(path: Path, exc: OSError) -> OutputError:
    """A one-line error for an OS-level write failure (disk full, permissions, ...)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        hint = "free disk space (or raise the file size limit) or write elsewhere"
    else:
        hint = "check that the directory is writable or choose another path"
    return OutputError(f"cannot write '{path}': {reason}; {hint}; no output was written")


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
    OutputError
        Writing failed (disk full, file size limit, permission denied): ``path`` is left as
        it was and the temporary file is removed.

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
    try:
        fd, tmp_name = temp_file(path.parent, f".{path.name}.")
    except OSError as exc:
        raise _write_failed(path, exc) from None
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
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, EquisynthError):
            raise _write_failed(path, exc) from None
        raise
    return path


@contextlib.contextmanager
def atomic_output_dir(
    path: str | Path, overwrite: bool = False, *, marker: str | None = None
) -> Iterator[Path]:
    """Build a directory output in a temporary sibling and rename it to ``path`` at the end.

    On any exception the temporary directory is removed and ``path`` is left as it was;
    an OS-level failure (disk full, permission denied) becomes an :class:`OutputError`.
    With ``overwrite``, an existing ``path`` is replaced only if it is an empty directory or,
    when ``marker`` is given, a directory holding a file named ``marker`` (an earlier output
    of the same kind): a wrong ``--out`` never deletes an unrelated directory.

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
    _check_replaceable(path, marker)
    try:
        tmp = temp_dir(path.parent, f".{path.name}.")
    except OSError as exc:
        raise _write_failed(path, exc) from None
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
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, EquisynthError):
            raise _write_failed(path, exc) from None
        raise
