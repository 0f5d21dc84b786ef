"""Diffusion layer of equisynth (torch only; never sees pandas or column names)."""

from equisynth.diffusion.denoiser import MLPDenoiser, timestep_embedding
from equisynth.diffusion.gaussian import GaussianDiffusion
from equisynth.diffusion.multinomial import MultinomialDiffusion
from equisynth.diffusion.sampling import sample
from equisynth.diffusion.schedules import (
    cosine_betas,
    linear_betas,
    make_betas,
    paper_num_timesteps,
)
from equisynth.diffusion.trainer import Trainer, TrainResult, diffusion_loss

__all__ = [
    "GaussianDiffusion",
    "MLPDenoiser",
    "MultinomialDiffusion",
    "TrainResult",
    "Trainer",
    "cosine_betas",
    "diffusion_loss",
    "linear_betas",
    "make_betas",
    "paper_num_timesteps",
    "sample",
    "timestep_embedding",
]
