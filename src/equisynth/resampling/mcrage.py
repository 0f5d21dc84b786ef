"""MCRAGE (Behal et al., arXiv 2310.18430): rebalance strata with a conditional generator."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Literal

import pandas as pd
from sklearn.base import clone

from equisynth._utils import seed_from_rng
from equisynth.exceptions import ConfigError
from equisynth.resampling._base import StrataSamplerBase
from equisynth.resampling.baselines import oversample_strata

__all__ = ["MCRAGE"]

logger = logging.getLogger(__name__)


class MCRAGE(StrataSamplerBase):
    """Fill under-represented strata (target x sensitive) with rows from a conditional generator.

    An imbalanced-learn sampler: ``fit_resample(X, y)`` returns the real rows first,
    unchanged and in their order, then the synthetic rows, with a fresh ``RangeIndex``
    (as imbalanced-learn does) and the same columns and dtypes as ``X``.

    Parameters
    ----------
    sensitive_features : str or sequence of str
        Columns of ``X`` that define the groups.
    sampling_strategy : str, float, dict or callable, default="auto"
        ``"auto"`` fills every observed stratum up to the largest one (the paper's rule);
        see :func:`equisynth.data.strata.resolve_sampling_strategy` for the others.
    generator : ConditionalGenerator, optional
        Any object with ``fit(df, *, condition_on)`` and ``sample(conditions, *,
        random_state)``; it is cloned before fitting. ``None`` uses a
        :class:`equisynth.TabularDiffusionGenerator` with its defaults.
    smote_first : bool or {"smote", "random"}, default=False
        The paper's future-work variant: first oversample the strata with SMOTE(-NC)
        (``True``/``"smote"``) or random duplication to the same targets, then train the
        generator on that augmented table. The returned synthetic rows still come from the
        generator.
    min_stratum_size : int, default=10
        Observed strata with fewer real rows give a ``UserWarning`` that names the stratum
        and its row count (their synthetic rows rest on very few patients).
    random_state : int, Generator or None
    verbose : bool, default=False

    Attributes
    ----------
    strata_ : StrataIndex
    strata_counts_ : Series (rows per stratum id)
    empty_strata_ : list of tuple
        Level tuples ``(target, *sensitive)`` of the strata with no row: reported (logging
        warning) and skipped, since there is nothing to learn them from.
    deficits_ : dict (stratum id -> number of new rows)
    sampling_strategy_ : dict (stratum id -> count after resampling), as imbalanced-learn
    generator_ : the fitted generator
    synthetic_mask_ : bool ndarray of ``len(X_res)``

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from equisynth.generators.base import EmpiricalGenerator
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"AGE": rng.normal(50, 10, 60), "SEX": ["F"] * 20 + ["M"] * 40})
    >>> y = pd.Series([0, 1] * 30, name="y")
    >>> sampler = MCRAGE(sensitive_features=["SEX"], generator=EmpiricalGenerator(), random_state=0)
    >>> X_res, y_res = sampler.fit_resample(X, y)
    >>> int(sampler.synthetic_mask_.sum())
    20
    """

    def __init__(
        self,
        *,
        sensitive_features: Sequence[str] | str,
        sampling_strategy="auto",
        generator=None,
        smote_first: bool | Literal["smote", "random"] = False,
        min_stratum_size: int = 10,
        random_state=None,
        verbose: bool = False,
    ):
        self.sensitive_features = sensitive_features
        self.sampling_strategy = sampling_strategy
        self.generator = generator
        self.smote_first = smote_first
        self.min_stratum_size = min_stratum_size
        self.random_state = random_state
        self.verbose = verbose

    def _make_generator(self, seed: int):
        if self.generator is None:
            from equisynth.generators.tabular import TabularDiffusionGenerator

            return TabularDiffusionGenerator(random_state=seed, verbose=self.verbose)
        gen = self.generator
        if not (callable(getattr(gen, "fit", None)) and callable(getattr(gen, "sample", None))):
            raise ConfigError(
                "generator must have fit(df, *, condition_on) and sample(conditions, *, random_state), "
                f"got {type(gen).__name__}"
            )
        gen = clone(gen) if hasattr(gen, "get_params") else copy.deepcopy(gen)
        if hasattr(gen, "get_params") and gen.get_params().get("random_state", 0) is None:
            gen.set_params(random_state=seed)
        return gen

    def _check_params(self) -> None:
        if self.smote_first not in (False, True, "smote", "random"):
            raise ConfigError(
                f"smote_first must be False, True, 'smote' or 'random', got {self.smote_first!r}"
            )
        if not isinstance(self.min_stratum_size, int) or self.min_stratum_size < 1:
            raise ConfigError(
                f"min_stratum_size must be a positive integer, got {self.min_stratum_size!r}"
            )

    def _generate(self, frame, ids, deficits, rng) -> pd.DataFrame:
        condition_on = list(self.condition_on_)
        training = frame
        if self.smote_first:
            method = "random" if self.smote_first == "random" else "smote"
            extra = oversample_strata(
                frame,
                ids,
                deficits,
                self.strata_,
                condition_on,
                method=method,
                random_state=seed_from_rng(rng),
            )
            training = pd.concat([frame, extra], ignore_index=True)
            logger.info(
                "smote_first: trained on %d real + %d %s rows", len(frame), len(extra), method
            )
        gen = self._make_generator(seed_from_rng(rng))
        gen.fit(training, condition_on=condition_on)
        self.generator_ = gen
        synth = gen.sample(self._conditions(deficits), random_state=seed_from_rng(rng))
        return synth.reset_index(drop=True)
