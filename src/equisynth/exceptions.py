"""The one place where equisynth's exception types live.

Every error that a user can cause derives from :class:`EquisynthError` and from
``ValueError`` or ``TypeError``, so that ``except ValueError`` keeps working for
scikit-learn users. Messages say what was expected and what was got, and, where
possible, how to fix it. The command-line interface turns any
:class:`EquisynthError` into a one-line message and exit code 2.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "EquisynthError",
    "InputFileError",
    "ModelFileError",
    "NotFittedError",
    "OutputError",
    "OutputExistsError",
    "SchemaError",
    "StrataError",
    "TrainingInterrupted",
]


class EquisynthError(Exception):
    """Base class of every error equisynth raises on purpose."""


class DataError(EquisynthError, ValueError):
    """The data given does not fit what was asked (missing column, NaN in the target, ...)."""


class SchemaError(DataError):
    """A column's type cannot be inferred or contradicts an explicit override."""


class StrataError(DataError):
    """The strata (outcome x sensitive attributes) cannot be built or resampled."""


class ConfigError(EquisynthError, ValueError):
    """A hyperparameter or option has an invalid value."""


class InputFileError(EquisynthError, ValueError):
    """An input file is missing, empty, unreadable or of an unknown format."""


class OutputExistsError(EquisynthError, ValueError):
    """An output path exists and ``overwrite`` was not requested."""


class OutputError(EquisynthError, ValueError):
    """An output cannot be written: directory not writable, disk full, file size limit."""


class ModelFileError(EquisynthError, ValueError):
    """A saved model directory is missing, of another format version, or tampered with."""


class NotFittedError(EquisynthError, ValueError):
    """A method that needs a fitted object was called before ``fit``."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT or SIGTERM after saving a checkpoint.

    Not an input error (hence a ``KeyboardInterrupt``, not an :class:`EquisynthError`):
    rerun the same fit with ``resume=True`` (CLI: ``--resume``) to continue where it stopped.

    Attributes
    ----------
    step : int
        Last completed training step (saved in the checkpoint).
    checkpoint : str
        Directory of the saved checkpoint.
    signum : int
        The signal that stopped training.
    """

    def __init__(self, message: str, *, step: int, checkpoint: str, signum: int) -> None:
        super().__init__(message)
        self.step = step
        self.checkpoint = checkpoint
        self.signum = signum
