"""Run manifests: what produced an output, from which inputs, with which versions and seed.

Every CLI command writes a ``manifest.json`` next to its output:

* a directory output (a model, an experiment, a quality report) gets ``<dir>/manifest.json``;
* a single-file output gets ``<file>.manifest.json`` (``rebalance --out x.csv`` writes
  ``x.csv.manifest.json``).

A command calls :func:`start_run` first (one line, with ``locals()`` so the resolved
options including their defaults are recorded) and :meth:`RunRecord.write` after its
output is in place (one line). The manifest itself is written atomically.

The manifest holds the wall time and the start/end times, so two runs never give
byte-identical manifests; the byte-identity promise of equisynth is about the data outputs.

Examples
--------
>>> import os, tempfile
>>> root = tempfile.mkdtemp()
>>> out = os.path.join(root, "x.csv")
>>> with open(out, "w") as fh:
...     _ = fh.write("a\\n1\\n")
>>> run = start_run("example", {"out": out, "seed": 3})
>>> path = run.write(out)
>>> os.path.basename(path)
'x.csv.manifest.json'
>>> read_manifest(path)["seed"]
3
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import secrets
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from equisynth import __version__
from equisynth.exceptions import InputFileError
from equisynth.io import temp_file

__all__ = [
    "DEPENDENCIES",
    "MANIFEST_FORMAT_VERSION",
    "RunRecord",
    "manifest_path",
    "package_versions",
    "read_manifest",
    "sha256_file",
    "start_run",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT_VERSION = 1

#: Distributions whose versions are recorded (the ones that can change a number).
DEPENDENCIES = (
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "imbalanced-learn",
    "fairlearn",
    "torch",
    "safetensors",
    "pyarrow",
    "typer",
    "tqdm",
    "matplotlib",
)


def manifest_path(output: str | Path) -> Path:
    """Where the manifest of ``output`` goes: inside a directory, or beside a file.

    Examples
    --------
    >>> manifest_path("out/rebalanced.csv").name
    'rebalanced.csv.manifest.json'
    """
    output = Path(output)
    if output.is_dir():
        return output / MANIFEST_NAME
    return output.with_name(output.name + MANIFEST_SUFFIX)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def package_versions() -> dict[str, str | None]:
    """Installed versions of equisynth and of :data:`DEPENDENCIES` (``None``: not installed)."""
    out: dict[str, str | None] = {"equisynth": __version__}
    for name in DEPENDENCIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _jsonable(value: Any) -> Any:
    """Options as JSON values: paths and other objects as text, non-finite floats as text."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_jsonable(v) for v in items]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        with contextlib.suppress(TypeError, ValueError):
            return _jsonable(value.item())
    return str(value)


def _describe_file(path: Path) -> dict:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)
        return {
            "path": str(path),
            "kind": "directory",
            "files": {str(p.relative_to(path)): sha256_file(p) for p in files},
        }
    return {
        "path": str(path),
        "kind": "file",
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
    }


def _environment() -> dict:
    env = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
    torch = sys.modules.get("torch")  # only when the command used it; never imported here
    if torch is not None:
        env["torch_num_threads"] = int(torch.get_num_threads())
        env["cuda_available"] = bool(torch.cuda.is_available())
    return env


def _utc(timestamp: float) -> str:
    return _dt.datetime.fromtimestamp(timestamp, tz=_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class RunRecord:
    """One command run: created by :func:`start_run`, written by :meth:`write`.

    Attributes
    ----------
    command : str
    config : dict
        The command's resolved options (JSON-safe).
    seed : int or None
        The seed the run used (drawn by :func:`start_run` when none was given and
        ``resolve_seed=True``, so that the manifest always reproduces the run).
    seed_source : {"given", "drawn", "none"}
    """

    command: str
    config: dict
    seed: int | None
    seed_source: str
    started: float = field(default_factory=time.time)
    _t0: float = field(default_factory=time.perf_counter)

    def to_dict(
        self, output: Path, inputs: Iterable[str | Path], extra: Mapping | None, location: Path
    ) -> dict:
        """The manifest document (see :doc:`docs/reliability.md`)."""
        wall = time.perf_counter() - self._t0
        return {
            "format": "equisynth-manifest",
            "format_version": MANIFEST_FORMAT_VERSION,
            "command": self.command,
            "config": self.config,
            "seed": self.seed,
            "seed_source": self.seed_source,
            "inputs": [_describe_file(Path(p)) for p in inputs if p is not None],
            "outputs": [{**_describe_file(location), "path": str(output)}],
            "versions": package_versions(),
            "environment": _environment(),
            "started_utc": _utc(self.started),
            "finished_utc": _utc(time.time()),
            "wall_seconds": round(wall, 3),
            **({"extra": _jsonable(dict(extra))} if extra else {}),
        }

    def write(
        self,
        output: str | Path,
        *,
        inputs: Iterable[str | Path | None] = (),
        extra: Mapping | None = None,
        into: str | Path | None = None,
    ) -> Path:
        """Write the manifest of ``output`` (after the output is complete) and return its path.

        Parameters
        ----------
        output : path
            The command's output file or directory (it must exist, or ``into`` must).
        inputs : paths
            Input files or directories; each is recorded with its SHA-256 (``None`` skipped).
        extra : mapping, optional
            More facts worth keeping (e.g. the generator's hyperparameters).
        into : path, optional
            A directory being built in place of ``output`` (e.g. the temporary directory of
            :func:`equisynth.io.atomic_output_dir`): the manifest is written inside it, so that
            it is renamed into place together with the rest of the output.
        """
        output = Path(output)
        location = Path(into) if into is not None else output
        target = location / MANIFEST_NAME if location.is_dir() else manifest_path(location)
        document = self.to_dict(output, [p for p in inputs if p is not None], extra, location)
        text = json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
        _write_text_atomic(target, text)
        return target


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp_name = temp_file(path.parent, f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def start_run(command: str, params: Mapping[str, Any], *, resolve_seed: bool = True) -> RunRecord:
    """Start recording a command run; call it first thing, with ``locals()``.

    Parameters
    ----------
    command : str
        The command's name, e.g. ``"rebalance"``.
    params : mapping
        The command's options (``locals()`` at the top of the command function).
    resolve_seed : bool, default=True
        When ``params["seed"]`` is ``None``, draw a seed (recorded as ``seed_source="drawn"``)
        so that the run can be repeated from its manifest. The command must then use
        :attr:`RunRecord.seed`.
    """
    # functions, classes and modules in ``params`` are names a command imported before calling
    # start_run (e.g. ``from ... import init_distributed``), not options
    config = {
        str(k): _jsonable(v)
        for k, v in params.items()
        if not str(k).startswith("_") and not callable(v) and not isinstance(v, ModuleType)
    }
    seed = params.get("seed")
    if seed is not None:
        source = "given"
    elif resolve_seed and "seed" in params:
        seed = secrets.randbelow(2**31)
        config["seed"] = seed
        source = "drawn"
    else:
        source = "none"
    return RunRecord(command=command, config=config, seed=seed, seed_source=source)


def read_manifest(path: str | Path) -> dict:
    """Read a manifest (a path to the JSON file, a directory output, or a file output)."""
    path = Path(path)
    if not path.name.endswith(".json") or path.is_dir():
        path = manifest_path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(f"cannot read manifest '{path}': {exc}") from None
    if not isinstance(document, dict) or document.get("format") != "equisynth-manifest":
        raise InputFileError(f"'{path}' is not an equisynth manifest")
    return document
