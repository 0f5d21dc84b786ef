"""Conditional tabular diffusion generator (the CDDPM behind MCRAGE).

This is the only module that joins the pandas side (:mod:`equisynth.data`) and the
torch side (:mod:`equisynth.diffusion`): it infers the schema, encodes the table,
trains a denoiser conditioned on the stratum index of the ``condition_on``
columns, and decodes samples back to a DataFrame with the input's columns and
dtypes.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from equisynth._utils import as_numpy_rng, resolve_device, seed_from_rng, torch_rng_scope
from equisynth.data.encoding import TabularEncoder
from equisynth.data.schema import TableSchema, infer_schema
from equisynth.data.strata import StrataIndex
from equisynth.exceptions import ConfigError, DataError, ModelFileError, NotFittedError

__all__ = ["FORMAT_VERSION", "TabularDiffusionGenerator"]

logger = logging.getLogger(__name__)

#: Version of the saved-model directory layout; bumped on any incompatible change.
FORMAT_VERSION = 1


class TabularDiffusionGenerator(BaseEstimator):
    """Conditional denoising diffusion model for mixed-type tables.

    Numeric columns are mapped to normal scores and diffused with Gaussian noise;
    categorical and binary columns (and missing-value indicators) are diffused with
    multinomial (uniform-noise) diffusion as in TabDDPM. The denoiser is an MLP
    conditioned on the stratum index of ``condition_on`` with a learned "no
    condition" token, trained with condition dropout so that classifier-free
    guidance is available at sampling time.

    The defaults were picked by measurement on the quality yardstick of ``docs/diffusion.md``
    (synthetic rows of a starved group scored against held-back real rows by a classifier
    two-sample test; see BENCHMARKS.md), not copied from the paper: in particular the paper's
    guidance weight (w = 3) made the rows much easier to tell apart from real ones than w = 1.

    Parameters
    ----------
    timesteps : int or "paper", default=1000
        Number of diffusion steps T. ``"paper"`` uses the MCRAGE rule
        ``T' = ceil(64 * beta_T * (1 + log(1 + diam(X))))`` on the encoded data (``diam``: the
        diagonal of the bounding box of the encoded numeric rows, an upper bound of the
        diameter; ``beta_T`` of the schedule with 1000 steps). With the cosine schedule
        (``beta_T = 0.999``) it gives about 285 steps on patient_treatment; with the linear one
        (``beta_T = 0.02``) only about 6, which does not reach noise (a warning says so).
    schedule : {"cosine", "linear"}, default="cosine"
        Beta schedule; ``"linear"`` (1e-4 to 0.02) is the paper's.
    n_iter : int, default=1000
        Training steps (mini-batches). Longer training made the rows of a small group easier
        to tell from held-back real rows (it starts to copy them), but large tables need more:
        on diabetes130 (81k rows) 3000 steps were clearly better than 1000.
    batch_size : int, default=1024
    lr : float, default=2e-3
    weight_decay : float, default=1e-4
    hidden : tuple of int, default=(256, 256)
        Widths of the denoiser's hidden layers.
    dim_t : int, default=128
        Width of the timestep / condition embeddings.
    dropout : float, default=0.0
        Dropout inside hidden blocks (never on the output).
    ema_decay : float, default=0.999
        Decay of the exponential moving average of the weights used for sampling (with the
        usual warm-up, ``min(ema_decay, (1 + step) / (10 + step))``).
    cond_drop_prob : float, default=0.1
        Probability of replacing the condition by the null token during training.
    guidance_scale : float, default=1.0
        Classifier-free guidance weight ``w`` in ``eps = eps_u + w (eps_c - eps_u)``;
        1 is plain conditional sampling (a "(1 + w)" convention's ``w = 3`` is
        ``guidance_scale=4`` here).
    sampler : {"ddim", "ddpm"}, default="ddim"
        Fast strided sampler (``sample_steps`` steps) or full ancestral sampling (T steps).
    sample_steps : int, default=50
        Steps of the fast sampler (ignored by ``"ddpm"``).
    eta : float in [0, 1], default=1.0
        Stochasticity of the fast sampler: 0 is deterministic DDIM, 1 adds the noise of the
        ancestral sampler at every strided step (clearly better here).
    numeric_transform : {"quantile", "standard"}, default="quantile"
        Map of numeric columns to normal scores (see ``docs/data.md``).
    schema_overrides : dict, optional
        Explicit column kinds, e.g. ``{"AGE": "integer"}``.
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    random_state : int, Generator or None
    verbose : bool, default=False
        Progress bars with ETA for training and sampling.

    Attributes
    ----------
    schema_ : TableSchema
    strata_ : StrataIndex
    encoder_ : TabularEncoder
    columns_ : list of str
        Columns of the fitted table, in order.
    timesteps_ : int
    loss_history_ : list of float

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"g": rng.choice(["a", "b"], 200), "x": rng.normal(size=200)})
    >>> gen = TabularDiffusionGenerator(n_iter=50, random_state=0).fit(df, condition_on=["g"])
    >>> out = gen.sample(pd.DataFrame({"g": ["a"] * 5}), random_state=0)
    >>> list(out.columns), len(out)
    (['g', 'x'], 5)
    """

    def __init__(
        self,
        *,
        timesteps: int | Literal["paper"] = 1000,
        schedule: Literal["cosine", "linear"] = "cosine",
        n_iter: int = 1000,
        batch_size: int = 1024,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        hidden: Sequence[int] = (256, 256),
        dim_t: int = 128,
        dropout: float = 0.0,
        ema_decay: float = 0.999,
        cond_drop_prob: float = 0.1,
        guidance_scale: float = 1.0,
        sampler: Literal["ddim", "ddpm"] = "ddim",
        sample_steps: int = 50,
        eta: float = 1.0,
        numeric_transform: Literal["quantile", "standard"] = "quantile",
        schema_overrides: Mapping[str, str] | None = None,
        device: str = "cpu",
        random_state=None,
        verbose: bool = False,
    ):
        self.timesteps = timesteps
        self.schedule = schedule
        self.n_iter = n_iter
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.hidden = hidden
        self.dim_t = dim_t
        self.dropout = dropout
        self.ema_decay = ema_decay
        self.cond_drop_prob = cond_drop_prob
        self.guidance_scale = guidance_scale
        self.sampler = sampler
        self.sample_steps = sample_steps
        self.eta = eta
        self.numeric_transform = numeric_transform
        self.schema_overrides = schema_overrides
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _check_params(self) -> None:
        if self.schedule not in ("cosine", "linear"):
            raise ConfigError(f"schedule must be 'cosine' or 'linear', got {self.schedule!r}")
        if self.sampler not in ("ddim", "ddpm"):
            raise ConfigError(f"sampler must be 'ddim' or 'ddpm', got {self.sampler!r}")
        if not (
            self.timesteps == "paper" or (isinstance(self.timesteps, int) and self.timesteps >= 2)
        ):
            raise ConfigError(f"timesteps must be an int >= 2 or 'paper', got {self.timesteps!r}")
        for name in ("n_iter", "batch_size", "sample_steps", "dim_t"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.cond_drop_prob < 1.0:
            raise ConfigError(f"cond_drop_prob must be in [0, 1), got {self.cond_drop_prob!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if not 0.0 <= self.eta <= 1.0:
            raise ConfigError(f"eta must be in [0, 1], got {self.eta!r}")
        if self.guidance_scale < 0:
            raise ConfigError(f"guidance_scale must be >= 0, got {self.guidance_scale!r}")

    def fit(
        self,
        df: pd.DataFrame,
        *,
        condition_on: Sequence[str],
        callback: Callable[[int, TabularDiffusionGenerator], None] | None = None,
        eval_every: int | None = None,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int | None = None,
        resume: bool = False,
    ) -> TabularDiffusionGenerator:
        """Fit the generator on ``df`` conditioned on the strata of ``condition_on``.

        Parameters
        ----------
        df : DataFrame
            Training table; the ``condition_on`` columns must not contain missing values.
        condition_on : sequence of str
            Columns whose combination defines the condition (the stratum index phi).
        callback : callable, optional
            Called as ``callback(step, generator)`` every ``eval_every`` training steps with
            the generator in a sampleable state (current EMA weights); used for model
            selection by downstream score.
        eval_every : int, optional
            Period of ``callback`` in training steps.
        checkpoint_dir : str or Path, optional
            Save training checkpoints there (safetensors + JSON, atomic); on SIGINT / SIGTERM
            a checkpoint is saved and :class:`~equisynth.exceptions.TrainingInterrupted` raised.
        checkpoint_every : int, optional
            Period of the checkpoints in training steps (default: only at the end / interrupt).
        resume : bool, default=False
            Continue from the newest checkpoint in ``checkpoint_dir``; the result equals an
            uninterrupted fit (same data order and random draws).

        Notes
        -----
        Launched by ``torchrun`` (after :func:`equisynth.diffusion.distributed.init_distributed`),
        every process trains on its slice of each global batch of
        ``world_size * batch_size`` rows under ``DistributedDataParallel``; see docs/scaling.md.
        """
        self._check_params()
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"fit expects a pandas DataFrame, got {type(df).__name__}")
        condition_on = list(condition_on)
        missing = [c for c in condition_on if c not in df.columns]
        if missing:
            raise DataError(
                f"condition column(s) {missing} not in the table; available columns: {list(df.columns)}"
            )
        ctx, device, seeds, ckpt = self._start_fit(checkpoint_dir, checkpoint_every, resume)

        self.columns_ = list(df.columns)
        self.condition_on_ = condition_on
        self.schema_ = infer_schema(df, self.schema_overrides)
        self.strata_ = StrataIndex(condition_on).fit(df)
        cond = self.strata_.encode(df)
        self.stratum_counts_ = np.bincount(cond, minlength=self.strata_.n_strata_).tolist()
        self.data_columns_ = [c for c in self.columns_ if c not in condition_on]
        data_schema = TableSchema(tuple(self.schema_[c] for c in self.data_columns_))
        self.encoder_ = TabularEncoder(
            numeric_transform=self.numeric_transform, random_state=seeds["encoder"]
        ).fit(df[self.data_columns_], data_schema)
        enc = self.encoder_.transform(df[self.data_columns_])
        self.d_num_ = enc.x_num.shape[1]
        self.cardinalities_ = [int(k) for k in self.encoder_.cardinalities_]
        self.timesteps_ = self._resolve_timesteps(enc.x_num)
        self._warn_if_not_noise()
        # bound of the predicted x_0 while sampling: the encoded training data's range
        self.clip_x0_ = float(np.abs(enc.x_num).max()) if enc.x_num.size else None

        from equisynth.diffusion.batches import TensorBatches

        batches = TensorBatches(enc.x_num, enc.x_cat, cond)
        return self._train(
            batches, ctx, device, seeds, ckpt, n_rows=len(df), source="memory",
            callback=callback, eval_every=eval_every,
        )  # fmt: skip

    def fit_parquet(
        self,
        path: str | Path,
        *,
        condition_on: Sequence[str],
        batch_rows: int = 65_536,
        sample_rows: int = 100_000,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int | None = None,
        resume: bool = False,
    ) -> TabularDiffusionGenerator:
        """Fit on a Parquet file read in batches, with memory bounded whatever its number of rows.

        A first pass infers the schema, the strata counts and the encoders from streamed
        statistics (exact levels, ranges and counts; quantiles from a uniform reservoir sample
        of ``sample_rows`` values per numeric column, exact when a column has fewer values);
        training then streams chunks of ``batch_rows`` rows, row groups in a new random order
        every epoch, drawing each mini-batch from the current chunk. On a file whose rows all
        fit in the reservoir the fitted schema, strata and encoders equal those of :meth:`fit`
        on the same table. See docs/scaling.md.

        Parameters
        ----------
        path : str or Path
            A ``.parquet`` file.
        condition_on : sequence of str
        batch_rows : int, default=65536
            Rows read and encoded at a time (the memory bound of training).
        sample_rows : int, default=100000
            Reservoir size per numeric column for the quantile transform.
        checkpoint_dir, checkpoint_every, resume
            As in :meth:`fit`; the stream position is part of the checkpoint.
        """
        from equisynth.generators._streaming import prepare_parquet

        self._check_params()
        condition_on = list(condition_on)
        ctx, device, seeds, ckpt = self._start_fit(checkpoint_dir, checkpoint_every, resume)
        batches, n_rows = prepare_parquet(
            self, path, condition_on, batch_rows=batch_rows, sample_rows=sample_rows, seeds=seeds
        )
        return self._train(batches, ctx, device, seeds, ckpt, n_rows=n_rows, source="parquet")

    def _start_fit(self, checkpoint_dir, checkpoint_every, resume):
        """Process context, device, the run's seeds (from the checkpoint when resuming)."""
        from equisynth.diffusion.checkpoint import Checkpointer
        from equisynth.diffusion.distributed import broadcast_ints, current_context

        ctx = current_context()
        device = ctx.local_device(resolve_device(self.device))
        rng = as_numpy_rng(self.random_state)
        # drawn in the order fit always used (encoder, training, sampling), then model init
        names = ("encoder", "train", "sample", "init")
        seeds = dict(
            zip(names, broadcast_ints([seed_from_rng(rng) for _ in names], ctx), strict=True)
        )
        ckpt = None
        if checkpoint_dir is not None:
            ckpt = Checkpointer(checkpoint_dir, every=checkpoint_every, resume=resume, context=ctx)
            meta = ckpt.peek_meta()
            if meta is not None:
                seeds = {k: int(v) for k, v in meta["extra"]["seeds"].items()}
            ckpt.extra["seeds"] = seeds
        elif checkpoint_every is not None or resume:
            raise ConfigError("checkpoint_every and resume need a checkpoint_dir")
        return ctx, device, seeds, ckpt

    def _fingerprint(self, n_rows: int, source: str, device) -> dict:
        import hashlib

        params = _jsonable_params(self.get_params())
        for key in ("n_iter", "batch_size", "device", "random_state", "verbose"):
            params.pop(key, None)  # may change on resume (more steps, other world size)
        enc_config, enc_arrays = self.encoder_.get_state()
        digest = hashlib.sha256(json.dumps(enc_config, sort_keys=True).encode())
        for key in sorted(enc_arrays):
            digest.update(key.encode() + np.ascontiguousarray(enc_arrays[key]).tobytes())
        return {
            "kind": "tabular-diffusion",
            "source": source,
            "device_type": device.type,
            "params": params,
            "columns": self.columns_,
            "condition_on": self.condition_on_,
            "n_rows": int(n_rows),
            "stratum_counts": [int(c) for c in self.stratum_counts_],
            "encoder_sha256": digest.hexdigest(),
        }

    def _train(
        self, batches, ctx, device, seeds, ckpt, *, n_rows, source, callback=None, eval_every=None
    ) -> TabularDiffusionGenerator:
        """Build the denoiser and train it on ``batches`` (shared by :meth:`fit` and
        :meth:`fit_parquet`)."""
        import torch

        from equisynth.diffusion.denoiser import MLPDenoiser
        from equisynth.diffusion.trainer import Trainer

        self.device_ = device
        # initial weights from the run's seed, without touching torch's global RNG
        with torch_rng_scope(seeds["init"], device):
            model = MLPDenoiser(
                self.d_num_,
                self.cardinalities_,
                self.strata_.n_strata_,
                hidden=tuple(self.hidden),
                dim_t=self.dim_t,
                dropout=self.dropout,
            )
        self.model_ = model.to(device)
        self._build_processes()
        torch_gen = torch.Generator(device=device)
        torch_gen.manual_seed(seeds["train"])
        if ckpt is not None:
            ckpt.fingerprint = self._fingerprint(n_rows, source, device)
        trainer = Trainer(
            n_iter=self.n_iter,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            ema_decay=self.ema_decay,
            cond_drop_prob=self.cond_drop_prob,
            device=device,
            progress=self.verbose,
            eval_every=eval_every,
            callback=None,
            checkpointer=ckpt,
            distributed=ctx,
        )

        if callback is not None:
            # The trainer hands over the EMA model; we expose it through ``self`` so the
            # callback can call ``self.sample`` exactly as after fit.
            def wrapped(step, model, ema_model):
                self.ema_model_ = ema_model
                callback(step, self)

            trainer.callback = wrapped

        with torch_rng_scope(seeds["train"], device):  # dropout uses torch's global RNG
            result = trainer.fit_batches(
                self.model_, self.gaussian_, self.multinomial_, batches, torch_gen
            )
        self.model_.load_state_dict(result.ema_state)
        self.model_.eval()
        self.ema_model_ = self.model_
        self.loss_history_ = [float(v) for _, v in result.loss_history]
        self.sample_seed_ = seeds["sample"]
        self.n_features_in_ = len(self.columns_)
        return self

    def _resolve_timesteps(self, x_num: np.ndarray) -> int:
        from equisynth.diffusion.schedules import make_betas, paper_num_timesteps

        if self.timesteps != "paper":
            return int(self.timesteps)
        # diam(X): the largest pairwise distance of the encoded numeric rows, bounded above
        # by the bounding-box diagonal (exact pairwise distances are quadratic in rows).
        if x_num.shape[1] == 0:
            diameter = 0.0
        else:
            span = np.nanmax(x_num, axis=0) - np.nanmin(x_num, axis=0)
            diameter = float(np.sqrt(np.sum(span**2)))
        beta_t = float(make_betas(self.schedule, 1000)[-1])
        return max(2, paper_num_timesteps(beta_t, diameter))

    def _warn_if_not_noise(self) -> None:
        """Warn when the forward process ends far from pure noise (sampling starts from it)."""
        from equisynth.diffusion.schedules import make_betas

        abar_last = float(np.prod(1.0 - make_betas(self.schedule, self.timesteps_).numpy()))
        if abar_last > 0.05:
            warnings.warn(
                f"with schedule={self.schedule!r} and T={self.timesteps_} steps the noised data "
                f"keeps {abar_last:.0%} of its signal at the last step (abar_T = {abar_last:.3f}), "
                "but sampling starts from pure noise, so samples will be poor; use more steps "
                "or schedule='cosine'",
                UserWarning,
                stacklevel=3,
            )

    def _build_processes(self) -> None:
        from equisynth.diffusion.gaussian import GaussianDiffusion
        from equisynth.diffusion.multinomial import MultinomialDiffusion
        from equisynth.diffusion.schedules import make_betas

        betas = make_betas(self.schedule, self.timesteps_)
        self.gaussian_ = GaussianDiffusion(betas).to(self.device_)
        self.multinomial_ = MultinomialDiffusion(self.cardinalities_, betas).to(self.device_)

    # --------------------------------------------------------------- sample
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "this TabularDiffusionGenerator is not fitted yet; call fit(df, condition_on=...) first"
            )

    def _conditions_frame(self, conditions, n) -> pd.DataFrame:
        if conditions is None:
            if n is None:
                raise ConfigError("sample needs `conditions` (a DataFrame or a mapping) or `n`")
            return None
        if isinstance(conditions, Mapping):
            if n is None:
                raise ConfigError("sample with a mapping of conditions needs `n`")
            return pd.DataFrame({c: [v] * int(n) for c, v in conditions.items()})
        if isinstance(conditions, pd.DataFrame):
            return conditions
        raise DataError(
            f"conditions must be a DataFrame or a mapping column -> value, got {type(conditions).__name__}"
        )

    def sample(
        self,
        conditions: pd.DataFrame | Mapping | None = None,
        *,
        n: int | None = None,
        random_state=None,
        guidance_scale: float | None = None,
    ) -> pd.DataFrame:
        """Generate rows.

        Parameters
        ----------
        conditions : DataFrame or mapping, optional
            A DataFrame with the ``condition_on`` columns gives one output row per row;
            a mapping ``{column: value}`` with ``n`` gives ``n`` rows of that stratum.
            With neither, ``n`` rows are drawn with strata in their training proportions.
        n : int, optional
        random_state : int, Generator or None
            Seed of this draw; ``None`` uses a seed fixed at fit time, so repeated calls of
            a fitted (or loaded) model give the same rows.
        guidance_scale : float, optional
            Overrides the fitted ``guidance_scale`` for this call.

        Returns
        -------
        DataFrame with the fitted table's columns, in order, and dtypes.
        """
        import torch

        from equisynth.diffusion.sampling import sample as diffusion_sample

        self._check_fitted()
        rng = as_numpy_rng(self.sample_seed_ if random_state is None else random_state)
        frame = self._conditions_frame(conditions, n)
        if frame is None:
            probs = self.stratum_probs_
            cond = rng.choice(len(probs), size=int(n), p=probs)
            frame = self.strata_.decode(cond)
        else:
            absent = [c for c in self.condition_on_ if c not in frame.columns]
            if absent:
                raise DataError(
                    f"conditions lack column(s) {absent}; expected {self.condition_on_}"
                )
            cond = self.strata_.encode(frame[self.condition_on_])
        n_rows = len(frame)
        if n_rows == 0:
            return self._empty_frame()
        device = self.device_
        gen = torch.Generator(device=device)
        gen.manual_seed(seed_from_rng(rng))
        w = self.guidance_scale if guidance_scale is None else guidance_scale
        x_num, x_cat = diffusion_sample(
            self.ema_model_,
            self.gaussian_,
            self.multinomial_,
            torch.as_tensor(cond, dtype=torch.long, device=device),
            n_steps=None if self.sampler == "ddpm" else self.sample_steps,
            method=self.sampler,
            eta=float(self.eta),
            guidance_scale=float(w),
            generator=gen,
            d_num=self.d_num_,
            cardinalities=self.cardinalities_,
            batch_size=None,  # the sampler picks the chunk size for the device
            clip_x0=self.clip_x0_,
            progress=self.verbose,
        )
        data = self.encoder_.inverse_transform(x_num.cpu().numpy(), x_cat.cpu().numpy())
        out = data.reset_index(drop=True)
        cond_frame = self.strata_.decode(cond).reset_index(drop=True)
        for col in self.condition_on_:
            out[col] = cond_frame[col].to_numpy()
        out = out[self.columns_]
        return self._restore_condition_dtypes(out)

    def _restore_condition_dtypes(self, out: pd.DataFrame) -> pd.DataFrame:
        for col in self.condition_on_:
            dtype = self.schema_[col].dtype
            try:
                out[col] = out[col].astype(dtype)
            except (TypeError, ValueError):  # pragma: no cover - labels always come from training
                logger.debug("could not restore dtype %s of %s", dtype, col)
        return out

    def _empty_frame(self) -> pd.DataFrame:
        return pd.DataFrame({c: pd.Series(dtype=self.schema_[c].dtype) for c in self.columns_})

    @property
    def stratum_probs_(self) -> np.ndarray:
        counts = np.asarray(self.stratum_counts_, dtype=float)
        return counts / counts.sum()

    # ------------------------------------------------------------ save/load
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Save the fitted generator as a directory: ``config.json`` + safetensors weights.

        The directory is built next to ``path`` and renamed into place, so an
        interrupted save never leaves a half-written model. No pickle is used.
        """
        from equisynth.generators._modelfile import write_model_dir

        self._check_fitted()
        config = {
            "params": _jsonable_params(self.get_params()),
            "columns": self.columns_,
            "condition_on": self.condition_on_,
            "data_columns": self.data_columns_,
            "schema": self.schema_.to_dict(),
            "strata": self.strata_.get_state(),
            "d_num": self.d_num_,
            "cardinalities": self.cardinalities_,
            "timesteps": self.timesteps_,
            "clip_x0": self.clip_x0_,
            "stratum_counts": self.stratum_counts_,
            "sample_seed": self.sample_seed_,
            "loss_history": self.loss_history_,
        }
        enc_config, enc_arrays = self.encoder_.get_state()
        config["encoder"] = enc_config
        weights = {
            k: v.detach().cpu().contiguous() for k, v in self.ema_model_.state_dict().items()
        }
        return write_model_dir(
            path,
            kind="tabular-diffusion",
            format_version=FORMAT_VERSION,
            config=config,
            tensors=weights,
            arrays=enc_arrays,
            overwrite=overwrite,
        )

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> TabularDiffusionGenerator:
        """Load a generator saved with :meth:`save`; weights land on ``device`` (CPU default)."""
        from equisynth.diffusion.denoiser import MLPDenoiser
        from equisynth.generators._integrity import check_loaded_tabular
        from equisynth.generators._modelfile import read_model_dir

        config, tensors, arrays = read_model_dir(
            path, kind="tabular-diffusion", format_version=FORMAT_VERSION
        )
        try:
            params = dict(config["params"])
            params["hidden"] = tuple(params["hidden"])
            params["device"] = device
            gen = cls(**params)
            gen.columns_ = list(config["columns"])
            gen.condition_on_ = list(config["condition_on"])
            gen.data_columns_ = list(config["data_columns"])
            gen.schema_ = TableSchema.from_dict(config["schema"])
            gen.strata_ = StrataIndex.from_state(config["strata"])
            gen.encoder_ = TabularEncoder.from_state(config["encoder"], arrays)
            gen.d_num_ = int(config["d_num"])
            gen.cardinalities_ = [int(k) for k in config["cardinalities"]]
            gen.timesteps_ = int(config["timesteps"])
            gen.clip_x0_ = config["clip_x0"]
            gen.stratum_counts_ = list(config["stratum_counts"])
            gen.sample_seed_ = int(config["sample_seed"])
            gen.loss_history_ = list(config["loss_history"])
            check_loaded_tabular(gen, path)
            gen.model_ = MLPDenoiser(
                gen.d_num_,
                gen.cardinalities_,
                gen.strata_.n_strata_,
                hidden=gen.hidden,
                dim_t=gen.dim_t,
                dropout=gen.dropout,
            )
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
            raise ModelFileError(
                f"model directory {path} has an invalid config.json ({type(exc).__name__}: {exc})"
            ) from exc
        gen.device_ = resolve_device(device)
        try:
            gen.model_.load_state_dict(tensors)
        except RuntimeError as exc:
            raise ModelFileError(
                f"weights in {path} do not match the model described by config.json: {exc}"
            ) from exc
        gen.model_.to(gen.device_).eval()
        gen.ema_model_ = gen.model_
        gen._build_processes()
        gen.n_features_in_ = len(gen.columns_)
        return gen


def _jsonable_params(params: dict) -> dict:
    out = {}
    for key, value in params.items():
        if isinstance(value, np.random.Generator | np.random.RandomState):
            value = None  # a live generator cannot be saved; the fitted seeds are saved instead
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, np.integer):
            value = int(value)
        out[key] = value
    json.dumps(out)  # fail early (TypeError) on anything else
    return out
