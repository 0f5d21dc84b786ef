"""A small longitudinal task and the HALO settings shared by the EHR scale tests and their worker."""

from __future__ import annotations

import numpy as np
import pandas as pd

from equisynth.data.tasks import SequenceTask

SMALL = {"n_layers": 1, "d_model": 16, "n_heads": 2, "max_visits": 4, "dropout": 0.0,
         "lr": 1e-2, "random_state": 0, "fairness": "disparate_impact",
         "fairness_lambda": 1.0, "sensitive": ["grp"]}  # fmt: skip


def make_task(n: int = 120, seed: int = 0) -> SequenceTask:
    """Two groups with different label prevalence and code frequencies, 1-4 visits."""
    rng = np.random.default_rng(seed)
    grp = rng.choice(["A", "B"], n)
    label = (rng.random(n) < np.where(grp == "A", 0.6, 0.1)).astype(int)
    visits = [
        [
            np.unique(
                [rng.integers(0, 4), *([4] if rng.random() < (0.7 if g == "A" else 0.1) else [])]
            )
            for _ in range(rng.integers(1, 5))
        ]
        for g in grp
    ]
    return SequenceTask(
        patient_ids=np.array([f"p{i}" for i in range(n)]),
        demographics=pd.DataFrame({"grp": grp}),
        label=label,
        visits=visits,
        vocab=[f"dx:{i}" for i in range(5)],
        task="toy",
    )
