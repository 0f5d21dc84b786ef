"""Checkpoints of long training runs: safetensors + JSON, written atomically, resumable.

A checkpoint directory holds one sub-directory per saved step::

    ckpt/
      step-000001000/
        state.safetensors   model, EMA and optimizer tensors, the step, RNG states (uint8)
        meta.json           format version, step, loss history, run fingerprint, sha256 of the state
      step-000002000/
        ...

Each step directory is filled in a hidden temporary sibling, flushed to disk, and renamed
into place, so a process killed at any moment (even with SIGKILL) leaves the previous
checkpoints intact; the newest directory whose checksum verifies is the one resumed.
Only the last ``keep`` checkpoints are kept. No pickle is used: tensors are safetensors,
RNG states are stored as uint8 tensors, everything else is JSON.

:class:`InterruptGuard` turns SIGINT / SIGTERM into a flag that the training loop checks
after each step, so that an interrupted run saves a checkpoint and stops cleanly.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from equisynth.diffusion.distributed import DistContext, any_rank, barrier, broadcast_ints
from equisynth.exceptions import ConfigError, ModelFileError

__all__ = ["CHECKPOINT_FORMAT_VERSION", "Checkpointer", "InterruptGuard"]

logger = logging.getLogger(__name__)

#: Version of the checkpoint layout; bumped on any incompatible change.
CHECKPOINT_FORMAT_VERSION = 1
STATE_FILE = "state.safetensors"
META_FILE = "meta.json"
_STEP_DIR = re.compile(r"^step-(\d{9})$")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not supported on every platform / filesystem
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Checkpointer:
    """Save and restore training state in ``directory`` every ``every`` steps.

    Parameters
    ----------
    directory : str or Path
        Created if absent. Shared by every rank of a multi-process job (only rank 0 writes).
    every : int or None
        Save every ``every`` training steps; ``None`` saves only when interrupted and at the end.
    resume : bool, default=False
        Continue from the newest intact checkpoint in ``directory`` (and start afresh if there
        is none). Without ``resume``, a directory that already holds checkpoints is an error,
        so that a run never silently replaces another run's checkpoints.
    keep : int, default=2
        Number of newest checkpoints kept on disk.
    fingerprint : dict, optional
        JSON-safe description of the run (hyperparameters, data summary). Resuming with a
        different fingerprint is a :class:`ConfigError` naming the keys that differ.
    context : DistContext, optional
        Multi-process context (rank 0 writes; every rank reads the same step).

    Examples
    --------
    >>> import tempfile
    >>> ck = Checkpointer(tempfile.mkdtemp(), every=10, fingerprint={"lr": 0.1})
    >>> _ = ck.save(10, {"w": torch.ones(2)}, {"loss_history": []})
    >>> state, meta = ck.load()
    >>> meta["step"], state["w"].tolist()
    (10, [1.0, 1.0])
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        every: int | None = None,
        resume: bool = False,
        keep: int = 2,
        fingerprint: Mapping[str, Any] | None = None,
        context: DistContext | None = None,
    ) -> None:
        if every is not None and (not isinstance(every, int) or every < 1):
            raise ConfigError(f"checkpoint_every must be a positive integer, got {every!r}")
        if not isinstance(keep, int) or keep < 1:
            raise ConfigError(f"keep must be a positive integer, got {keep!r}")
        self.directory = Path(directory)
        self.every = every
        self.resume = resume
        self.keep = keep
        self.fingerprint = dict(fingerprint or {})
        #: JSON-safe values saved with every checkpoint (e.g. the seeds a run drew).
        self.extra: dict[str, Any] = {}
        self.context = context or DistContext()
        if self.directory.exists() and not self.directory.is_dir():
            raise ConfigError(
                f"checkpoint directory '{self.directory}' is a file; give a directory"
            )
        if self.context.is_main:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot create checkpoint directory '{self.directory}' ({exc.strerror}); "
                    "choose a writable path"
                ) from None
        barrier(self.context)
        if not resume and self.steps():
            raise ConfigError(
                f"checkpoint directory '{self.directory}' already holds checkpoints "
                f"(steps {self.steps()}); pass resume=True (CLI: --resume) to continue that run, "
                "or choose an empty directory"
            )

    # ------------------------------------------------------------------ reading
    def steps(self) -> list[int]:
        """Steps of the complete checkpoint directories present, ascending."""
        if not self.directory.is_dir():
            return []
        found = []
        for entry in self.directory.iterdir():
            m = _STEP_DIR.match(entry.name)
            if m and (entry / META_FILE).is_file():
                found.append(int(m.group(1)))
        return sorted(found)

    def path_for(self, step: int) -> Path:
        """Directory of the checkpoint of ``step``."""
        return self.directory / f"step-{step:09d}"

    def _read(self, step: int) -> tuple[dict[str, torch.Tensor], dict]:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = self.path_for(step)
        try:
            meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelFileError(
                f"checkpoint {path} has an unreadable {META_FILE}: {exc}"
            ) from None
        if meta.get("format") != "equisynth-checkpoint":
            raise ModelFileError(f"{path} is not an equisynth checkpoint")
        if meta.get("format_version") != CHECKPOINT_FORMAT_VERSION:
            raise ModelFileError(
                f"checkpoint {path} has format version {meta.get('format_version')}; this "
                f"equisynth reads version {CHECKPOINT_FORMAT_VERSION}"
            )
        if _sha256(path / STATE_FILE) != meta.get("sha256"):
            raise ModelFileError(f"checkpoint {path} is corrupt: {STATE_FILE} fails its checksum")
        try:
            state = load_file(str(path / STATE_FILE))
        except (SafetensorError, OSError) as exc:  # pragma: no cover - checksum catches these
            raise ModelFileError(f"checkpoint {path} cannot be read: {exc}") from None
        return state, meta

    def latest_step(self) -> int | None:
        """Newest step whose checkpoint verifies (corrupt ones are skipped with a warning)."""
        for step in reversed(self.steps()):
            try:
                self._read(step)
            except ModelFileError as exc:
                logger.warning("skipping checkpoint: %s", exc)
                continue
            return step
        return None

    def load(self) -> tuple[dict[str, torch.Tensor], dict] | None:
        """``(tensors, meta)`` of the newest intact checkpoint, or ``None`` when there is none.

        In a multi-process job rank 0 picks the step and every rank loads that same step.
        The stored fingerprint must equal this run's fingerprint.
        """
        step = self.latest_step() if self.context.is_main else None
        step = broadcast_ints([-1 if step is None else step], self.context)[0]
        if step < 0:
            return None
        state, meta = self._read(step)
        self.check_fingerprint(meta)
        return state, meta

    def peek_meta(self) -> dict | None:
        """``meta.json`` of the checkpoint :meth:`load` would restore (``None`` if none / not resuming)."""
        if not self.resume:
            return None
        step = self.latest_step() if self.context.is_main else None
        step = broadcast_ints([-1 if step is None else step], self.context)[0]
        if step < 0:
            return None
        return self._read(step)[1]

    def check_fingerprint(self, meta: Mapping) -> None:
        """Refuse to resume a checkpoint written by a run with other settings or data."""
        saved = meta.get("fingerprint", {})
        current = json.loads(json.dumps(self.fingerprint, default=str))
        diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        if diff:
            details = "; ".join(
                f"{k}: checkpoint {saved.get(k)!r}, now {current.get(k)!r}" for k in diff[:4]
            )
            raise ConfigError(
                f"checkpoint in '{self.directory}' was written by a different run ({details}); "
                "resume with the same data and settings, or choose another checkpoint directory"
            )

    # ------------------------------------------------------------------ writing
    def due(self, step: int) -> bool:
        """True when ``step`` is a periodic checkpoint step."""
        return self.every is not None and step % self.every == 0

    def save(self, step: int, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> Path:
        """Write the checkpoint of ``step`` atomically (rank 0 only) and prune old ones.

        Every rank must call it (it ends with a barrier); only rank 0 writes.
        """
        from safetensors.torch import save_file

        path = self.path_for(step)
        if self.context.is_main:
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=self.directory))
            try:
                save_file(
                    {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                    str(tmp / STATE_FILE),
                )
                with open(tmp / STATE_FILE, "rb") as fh:
                    os.fsync(fh.fileno())
                document = {
                    "format": "equisynth-checkpoint",
                    "format_version": CHECKPOINT_FORMAT_VERSION,
                    "step": int(step),
                    "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "sha256": _sha256(tmp / STATE_FILE),
                    "fingerprint": self.fingerprint,
                    "extra": self.extra,
                    **dict(meta),
                }
                with open(tmp / META_FILE, "w", encoding="utf-8") as fh:
                    json.dump(document, fh, indent=1, default=str)
                    fh.flush()
                    os.fsync(fh.fileno())
                if path.exists():  # a re-run of the same step (after resume): replace it
                    shutil.rmtree(path)
                os.replace(tmp, path)
                _fsync_dir(self.directory)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            self._prune()
            logger.info("saved checkpoint of step %d to %s", step, path)
        barrier(self.context)
        return path

    def _prune(self) -> None:
        for step in self.steps()[: -self.keep]:
            shutil.rmtree(self.path_for(step), ignore_errors=True)
        for entry in self.directory.iterdir():  # leftovers of a killed save
            if entry.name.startswith(".step-") and entry.name.endswith(".tmp"):
                shutil.rmtree(entry, ignore_errors=True)


class InterruptGuard:
    """Context manager turning SIGINT / SIGTERM into a stop request checked between steps.

    A second signal while the first is pending restores the default behaviour and raises
    ``KeyboardInterrupt`` at once. Outside the main thread it does nothing (signals can only
    be handled there).

    Examples
    --------
    >>> with InterruptGuard() as guard:
    ...     guard.requested(DistContext())
    False
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:
        if self.signum is not None:  # second signal: stop now
            self._restore()
            raise KeyboardInterrupt
        self.signum = signum
        logger.warning(
            "received %s: saving a checkpoint after this step", signal.Signals(signum).name
        )

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def __exit__(self, *exc) -> None:
        self._restore()

    def requested(self, ctx: DistContext) -> bool:
        """True (on every rank) when any rank received a stop signal."""
        return any_rank(self.signum is not None, ctx)
