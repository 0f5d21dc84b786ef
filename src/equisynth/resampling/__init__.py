"""resampling layer of equisynth: MCRAGE and the baselines behind one interface."""

from __future__ import annotations

from typing import Literal

from equisynth.exceptions import ConfigError
from equisynth.resampling._validation import validate_resampling_input
from equisynth.resampling.baselines import StrataOversampler
from equisynth.resampling.mcrage import MCRAGE

__all__ = ["MCRAGE", "StrataOversampler", "make_resampler", "validate_resampling_input"]


def make_resampler(method: Literal["mcrage", "smote", "random"], **kw):
    """An unfitted sampler for ``method``; ``kw`` go to its constructor.

    Examples
    --------
    >>> make_resampler("smote", sensitive_features=["SEX"]).method
    'smote'
    """
    if method == "mcrage":
        return MCRAGE(**kw)
    if method in ("smote", "random"):
        return StrataOversampler(method=method, **kw)
    raise ConfigError(f"method must be 'mcrage', 'smote' or 'random', got {method!r}")
