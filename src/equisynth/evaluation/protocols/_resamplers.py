"""The resampler behind each arm: baselines and MCRAGE on the same strata (target x sensitive)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from equisynth._utils import as_numpy_rng, seed_from_rng
from equisynth.exceptions import ConfigError

if TYPE_CHECKING:
    from equisynth.evaluation.protocols._base import ProtocolBase


def make_generator(protocol: ProtocolBase, random_state: int, real_rows=None):
    """The conditional generator of the MCRAGE arms, with model selection when asked."""
    if protocol.generator == "empirical":
        from equisynth.generators.base import EmpiricalGenerator

        return EmpiricalGenerator(random_state=random_state)
    if protocol.model_selection:
        from equisynth.evaluation.protocols.selection import CheckpointSelectedGenerator

        return CheckpointSelectedGenerator(
            target=protocol.target,
            positive=protocol.positive,
            sensitive=tuple(protocol.sensitive),
            features=tuple(protocol.features),
            classifier=protocol.classifier,
            generator_params=dict(protocol.generator_params),
            param_grid=None if protocol.param_grid is None else list(protocol.param_grid),
            search_budget=protocol.search_budget,
            eval_every=protocol.eval_every,
            val_size=protocol.val_size,
            real_rows=real_rows,
            sampling_strategy=protocol.sampling_strategy,
            random_state=random_state,
        )
    from equisynth.generators.tabular import TabularDiffusionGenerator

    return TabularDiffusionGenerator(**dict(protocol.generator_params), random_state=random_state)


def make_arm_resampler(arm: str, protocol: ProtocolBase, *, random_state: int, base=None):
    """An unfitted imbalanced-learn style sampler (``fit_resample``) for a resampling arm.

    ``base`` (the real training rows) lets model selection keep synthetic rows out of
    its validation split.
    """
    rng = as_numpy_rng(random_state)
    sensitive = list(protocol.sensitive)
    if arm in ("random_oversample", "smote"):
        from equisynth.resampling.baselines import StrataOversampler

        return StrataOversampler(
            sensitive_features=sensitive,
            method="random" if arm == "random_oversample" else "smote",
            sampling_strategy=protocol.sampling_strategy,
            random_state=seed_from_rng(rng),
        )
    if arm in ("mcrage", "smote_mcrage"):
        from equisynth.resampling.mcrage import MCRAGE

        generator = make_generator(protocol, seed_from_rng(rng), real_rows=base)
        return MCRAGE(
            sensitive_features=sensitive,
            generator=generator,
            sampling_strategy=protocol.sampling_strategy,
            smote_first=arm == "smote_mcrage",
            random_state=seed_from_rng(rng),
        )
    raise ConfigError(f"arm {arm!r} has no resampler")
