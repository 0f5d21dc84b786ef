"""equisynth: fairness-aware synthetic rebalancing of health data.

The public entry points are :class:`equisynth.MCRAGE` (an imbalanced-learn
sampler) and :class:`equisynth.TabularDiffusionGenerator` (the conditional
diffusion model behind it).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["MCRAGE", "TabularDiffusionGenerator", "__version__"]


def __getattr__(name: str):
    # Lazy imports keep ``import equisynth`` (and the CLI's --help) fast: torch is
    # only imported when a generator is actually needed.
    if name == "MCRAGE":
        from equisynth.resampling.mcrage import MCRAGE

        return MCRAGE
    if name == "TabularDiffusionGenerator":
        from equisynth.generators.tabular import TabularDiffusionGenerator

        return TabularDiffusionGenerator
    raise AttributeError(f"module 'equisynth' has no attribute {name!r}")
