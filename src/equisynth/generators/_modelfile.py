"""Model directories: ``config.json`` (with a format version and checksums) + safetensors.

No pickle anywhere: the config is JSON, tensors and arrays are safetensors files,
which hold raw buffers only, so loading a model never executes code. ``config.json``
records the SHA-256 of every weights file and of its own ``config`` section
(``config_sha256``), so an edited config or a swapped weights file is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from equisynth import __version__
from equisynth.exceptions import ModelFileError, OutputExistsError
from equisynth.io import temp_dir

__all__ = ["read_model_dir", "write_model_dir"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
ARRAYS_FILE = "arrays.safetensors"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _config_digest(config) -> str:
    """SHA-256 of the config's canonical JSON (sorted keys), as it reads back from disk."""
    canonical = json.dumps(
        json.loads(json.dumps(config, allow_nan=True)),
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=True,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _check_replaceable(path: Path) -> None:
    """Only an earlier model directory (or an empty directory) may be replaced."""
    if path.is_dir():
        if not any(path.iterdir()) or (path / CONFIG_FILE).is_file():
            return
        raise OutputExistsError(
            f"{path} exists and is not an equisynth model directory; refusing to replace it, "
            "choose another path"
        )
    raise OutputExistsError(f"{path} exists and is a file; choose another path for the model")


def write_model_dir(
    path,
    *,
    kind: str,
    format_version: int,
    config: dict,
    tensors: dict,
    arrays: dict[str, np.ndarray] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a model directory atomically (build in a sibling temp dir, then rename)."""
    from safetensors.numpy import save_file as save_numpy
    from safetensors.torch import save_file as save_torch

    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"{path} exists; pass overwrite=True (CLI: --overwrite) or choose another path"
        )
    if path.exists():
        _check_replaceable(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputExistsError(f"cannot save the model: directory {parent} does not exist")
    tmp = temp_dir(parent, f".{path.name}.")
    try:
        save_torch(tensors, str(tmp / WEIGHTS_FILE))
        files = {WEIGHTS_FILE: _sha256(tmp / WEIGHTS_FILE)}
        if arrays:
            save_numpy(
                {k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp / ARRAYS_FILE)
            )
            files[ARRAYS_FILE] = _sha256(tmp / ARRAYS_FILE)
        document = {
            "format": "equisynth-model",
            "kind": kind,
            "format_version": format_version,
            "equisynth_version": __version__,
            "sha256": files,
            "config_sha256": _config_digest(config),
            "config": config,
        }
        with open(tmp / CONFIG_FILE, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=1, allow_nan=True)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=parent))
            os.replace(path, backup / "old")
            os.replace(tmp, path)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def read_model_dir(path, *, kind: str, format_version: int):
    """Read and verify a model directory; returns ``(config, tensors, arrays)``.

    Refuses (with :class:`ModelFileError`) a missing directory, another format
    version or kind, and files whose SHA-256 does not match the one recorded.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file as load_numpy
    from safetensors.torch import load_file as load_torch

    path = Path(path)
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise ModelFileError(f"{path} is not an equisynth model directory (no {CONFIG_FILE})")
    try:
        document = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"cannot read {config_path}: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != "equisynth-model":
        raise ModelFileError(f"{config_path} is not an equisynth model config")
    if document.get("kind") != kind:
        raise ModelFileError(f"{path} holds a {document.get('kind')!r} model, expected {kind!r}")
    if document.get("format_version") != format_version:
        raise ModelFileError(
            f"{path} has model format version {document.get('format_version')!r}; this equisynth "
            f"reads version {format_version}: re-fit the model with this version"
        )
    if "config" not in document or document.get("config_sha256") != _config_digest(
        document["config"]
    ):
        raise ModelFileError(
            f"checksum mismatch for {config_path}: its config section was modified or "
            "corrupted (or the model was saved without a config checksum); re-fit the model"
        )
    checksums = document.get("sha256") or {}
    if not isinstance(checksums, dict):
        raise ModelFileError(f"{config_path} has no valid weights checksums; re-fit the model")
    for name in (WEIGHTS_FILE, *([ARRAYS_FILE] if ARRAYS_FILE in checksums else [])):
        file = path / name
        if not file.is_file():
            raise ModelFileError(f"{path} lacks {name}")
        if _sha256(file) != checksums.get(name):
            raise ModelFileError(
                f"checksum mismatch for {file}: the file was modified or corrupted"
            )
    try:
        tensors = load_torch(str(path / WEIGHTS_FILE), device="cpu")
        arrays = load_numpy(str(path / ARRAYS_FILE)) if ARRAYS_FILE in checksums else {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"cannot read weights in {path}: {exc}") from exc
    return document["config"], tensors, arrays
