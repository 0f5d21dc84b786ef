"""Small helpers shared by every layer: explicit randomness, device resolution."""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator

import numpy as np

from equisynth.exceptions import ConfigError

__all__ = [
    "as_numpy_rng",
    "as_torch_generator",
    "resolve_device",
    "seed_from_rng",
    "torch_rng_scope",
]


def as_numpy_rng(random_state=None) -> np.random.Generator:
    """Turn ``None``, an int, a ``numpy.random.Generator`` or ``RandomState`` into a Generator.

    Never touches numpy's global state.

    Examples
    --------
    >>> rng = as_numpy_rng(0)
    >>> float(rng.random()) == float(as_numpy_rng(0).random())
    True
    """
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ConfigError(f"random_state must be a non-negative integer, got {random_state}")
        return np.random.default_rng(int(random_state))
    raise ConfigError(
        f"random_state must be None, an int or a numpy Generator, got {type(random_state).__name__}"
    )


def seed_from_rng(rng: np.random.Generator) -> int:
    """Draw a 63-bit seed from ``rng`` (to seed a torch.Generator or a child estimator)."""
    return int(rng.integers(0, 2**63 - 1))


def as_torch_generator(random_state=None, device="cpu"):
    """A ``torch.Generator`` on ``device`` seeded from ``random_state`` (see :func:`as_numpy_rng`)."""
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(seed_from_rng(as_numpy_rng(random_state)))
    return gen


@contextlib.contextmanager
def torch_rng_scope(seed: int, device="cpu") -> Iterator[None]:
    """Run a block with torch's global RNG seeded to ``seed``; restore the RNG state afterwards.

    For torch code that draws from the global generator with no way to pass one (parameter
    initialisation in ``nn.Module`` constructors, dropout). The caller's global state is left
    exactly as it was, so this never seeds global state from the user's point of view.

    Examples
    --------
    >>> import torch
    >>> with torch_rng_scope(0):
    ...     a = torch.rand(2)
    >>> with torch_rng_scope(0):
    ...     b = torch.rand(2)
    >>> bool((a == b).all())
    True
    """
    import torch

    dev = torch.device(device)
    cuda = []
    if dev.type == "cuda":
        cuda = [dev.index if dev.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(int(seed))
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(int(seed))
        yield


def resolve_device(device="cpu"):
    """Resolve ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` to a ``torch.device``.

    Asking for CUDA on a machine without it is a :class:`ConfigError`, not a crash.
    """
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={device!r} was asked for but CUDA is not available; use device='cpu'"
        )
    return dev
