"""Conditional HALO-style generator of longitudinal EHR, trained with an optional fairness term.

:class:`HALOGenerator` joins the pandas side (:class:`~equisynth.data.tasks.SequenceTask`) and
the torch network of :mod:`equisynth.generators._halo`: it encodes patients as a prefix visit
(demographics, label) followed by multi-hot visits, trains with
``loss = NLL + fairness_lambda * L_F`` (``L_F`` from :mod:`equisynth.fairness.losses`, applied to
the model's ``P(label = 1 | demographics)`` over the intersectional groups of ``sensitive``),
and samples synthetic patients, optionally conditioned on demographics and label. See
``docs/ehr_generator.md``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from equisynth._utils import as_numpy_rng, resolve_device, seed_from_rng, torch_rng_scope
from equisynth.data.tasks import SequenceTask
from equisynth.exceptions import ConfigError, DataError, ModelFileError, NotFittedError

__all__ = ["FORMAT_VERSION", "HALOGenerator"]

logger = logging.getLogger(__name__)

#: Version of the saved-model directory layout; bumped on any incompatible change.
FORMAT_VERSION = 1
_KIND = "halo-ehr"
_ARCH = ("n_layers", "d_model", "n_heads", "n_code_layers", "max_visits")


class HALOGenerator(BaseEstimator):
    """Hierarchical autoregressive generator of patients (demographics, label, visits of codes).

    A patient is a prefix "visit" (one-hot of each demographic column, then the label bit)
    followed by its visits, each a multi-hot vector over the task's vocabulary. A causal
    transformer over visit embeddings gives the context of the next visit; MADE-style masked
    linear layers (HALO's code-level module) give every bit of that visit given the context and
    the bits before it, with an end-of-record bit first. Training minimises the negative
    log-likelihood per patient plus ``fairness_lambda`` times a differentiable fairness loss of
    the model's ``P(label = 1 | demographics)`` over the intersectional groups of ``sensitive``.

    Parameters
    ----------
    n_layers, d_model, n_heads : int, default=2, 128, 4
        Transformer depth, width and attention heads (``d_model`` divisible by ``n_heads``).
    n_code_layers : int, default=2
        Masked layers of the code-level autoregressive heads (1 = logistic autoregression).
    max_visits : int, default=20
        Visits kept per patient (the last ones, nearest to the label) and most visits sampled.
    dropout : float, default=0.1
        Dropout inside the transformer.
    n_epochs : int, default=30
        Passes over the patients (each a new random order); steps per epoch
        ``ceil(n / (world_size * batch_size))``, the last batch of an epoch filled from the
        start of the epoch's order.
    batch_size : int, default=64
        Patients per step and process.
    lr : float, default=1e-3
        Adam learning rate.
    fairness : {"disparate_impact", "worst_group_tpr"}, callable or None, default=None
        Fairness loss (see :func:`~equisynth.fairness.losses.make_fairness_loss`); a callable is
        ``(p, y, groups) -> scalar tensor``.
    fairness_lambda : float, default=0.0
        Weight of the fairness loss (>= 0; needs ``fairness``).
    sensitive : sequence of str, default=()
        Demographic columns whose intersections are the fairness groups.
    group_weights : mapping group label -> float, optional
        Per-group weights of the fairness loss, e.g. ``{"sex=F & race=black": 2.0}`` (labels as
        in :meth:`SequenceTask.groups`; unlisted groups weigh 1; a group absent from the
        training task is ignored with a warning). The loss becomes
        ``max_g w_g * shortfall_g`` with ``w`` scaled to a maximum of 1.
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    random_state : int, Generator or None
    verbose : bool, default=False
        Progress bar with the loss.

    Attributes
    ----------
    model_ : HALONetwork
    layout_ : PrefixLayout
        Demographic columns and levels (prefix bits).
    vocab_ : list of str
    group_names_ : list of str
        Intersectional groups of ``sensitive`` seen in fit (ids of the fairness loss).
    history_ : list of dict
        Per epoch: ``epoch, step, nll`` (per patient), ``fairness`` (``L_F``, None without
        fairness), ``loss``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from equisynth.data.tasks import SequenceTask
    >>> rng = np.random.default_rng(0)
    >>> n = 60
    >>> task = SequenceTask(
    ...     patient_ids=np.arange(n).astype(str),
    ...     demographics=pd.DataFrame({"sex": rng.choice(["F", "M"], n)}),
    ...     label=rng.integers(0, 2, n),
    ...     visits=[[rng.choice(5, 2, replace=False)] for _ in range(n)],
    ...     vocab=[f"dx:{i}" for i in range(5)],
    ... )
    >>> gen = HALOGenerator(n_layers=1, d_model=16, n_heads=2, max_visits=3, n_epochs=2,
    ...                     random_state=0).fit(task)
    >>> out = gen.sample(conditions=pd.DataFrame({"sex": ["F", "F", "M"]}), random_state=0)
    >>> out.demographics["sex"].tolist(), bool(out.is_synthetic.all())
    (['F', 'F', 'M'], True)
    """

    def __init__(
        self,
        *,
        n_layers: int = 2,
        d_model: int = 128,
        n_heads: int = 4,
        n_code_layers: int = 2,
        max_visits: int = 20,
        dropout: float = 0.1,
        n_epochs: int = 30,
        batch_size: int = 64,
        lr: float = 1e-3,
        fairness: Literal["disparate_impact", "worst_group_tpr"] | Callable | None = None,
        fairness_lambda: float = 0.0,
        sensitive: Sequence[str] = (),
        group_weights: Mapping[str, float] | None = None,
        device: str = "cpu",
        random_state=None,
        verbose: bool = False,
    ):
        self.n_layers = n_layers
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_code_layers = n_code_layers
        self.max_visits = max_visits
        self.dropout = dropout
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.fairness = fairness
        self.fairness_lambda = fairness_lambda
        self.sensitive = sensitive
        self.group_weights = group_weights
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _check_params(self):
        for name in ("n_layers", "d_model", "n_heads", "n_code_layers", "max_visits",
                     "n_epochs", "batch_size"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})"
            )
        if not isinstance(self.dropout, int | float) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.lr, int | float) or not self.lr > 0 or not np.isfinite(self.lr):
            raise ConfigError(f"lr must be a positive number, got {self.lr!r}")
        lam = self.fairness_lambda
        if isinstance(lam, bool) or not isinstance(lam, int | float) or not 0 <= lam < np.inf:
            raise ConfigError(f"fairness_lambda must be a finite number >= 0, got {lam!r}")
        if isinstance(self.sensitive, str):
            raise ConfigError(
                f"sensitive must be a list of column names, got the string {self.sensitive!r}; "
                f"use sensitive=[{self.sensitive!r}]"
            )
        if self.fairness is None:
            if lam > 0:
                raise ConfigError(
                    f"fairness_lambda={lam} needs a fairness loss: set fairness="
                    "'disparate_impact', 'worst_group_tpr' or a callable"
                )
            if self.group_weights:
                raise ConfigError("group_weights need a fairness loss: set fairness")
            return None
        from equisynth.fairness.losses import make_fairness_loss

        loss = make_fairness_loss(self.fairness)
        if not list(self.sensitive):
            raise ConfigError(
                f"fairness={loss.name!r} needs the sensitive demographic columns: set "
                "sensitive=[...]"
            )
        return loss

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        task: SequenceTask,
        *,
        init: HALOGenerator | None = None,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int | None = None,
        resume: bool = False,
    ) -> HALOGenerator:
        """Train on the patients of ``task``.

        Parameters
        ----------
        task : SequenceTask
        init : HALOGenerator, optional
            Warm start: a fitted generator with the same architecture (``n_layers``,
            ``d_model``, ``n_heads``, ``n_code_layers``, ``max_visits``), vocabulary and
            demographic levels; training starts from its weights (with a fresh optimizer) and
            runs ``n_epochs`` more epochs with *this* generator's settings, e.g. another
            ``fairness_lambda``. ``init`` itself is not modified.
        checkpoint_dir : str or Path, optional
            Save checkpoints there; on SIGINT / SIGTERM a checkpoint is saved and
            :class:`~equisynth.exceptions.TrainingInterrupted` raised.
        checkpoint_every : int, optional
            Period of the checkpoints in steps (default: only at the end / interrupt).
        resume : bool, default=False
            Continue from the newest checkpoint in ``checkpoint_dir``; the result equals an
            uninterrupted fit.

        Notes
        -----
        Launched by ``torchrun`` (after :func:`equisynth.diffusion.distributed.init_distributed`),
        each process trains on its slice of every global batch of ``world_size * batch_size``
        patients under ``DistributedDataParallel``; rank 0 writes checkpoints and logs.
        """
        import torch

        from equisynth.diffusion.distributed import broadcast_ints, current_context
        from equisynth.generators._ehr_data import PackedVisits, PrefixLayout, group_ids
        from equisynth.generators._ehr_train import TrainData, train_halo
        from equisynth.generators._halo import HALONetwork

        loss_fn = self._check_params()
        if not isinstance(task, SequenceTask):
            raise DataError(f"fit expects a SequenceTask, got {type(task).__name__}")
        if task.n_patients == 0:
            raise DataError("the task holds no patient; fit needs at least one")
        if task.n_codes == 0:
            raise DataError("the task's vocabulary is empty; fit needs at least one code")
        layout = PrefixLayout.from_frame(task.demographics)
        vocab = list(task.vocab)
        if init is not None:
            layout, vocab = self._check_init(init, task, layout)
        sensitive = [str(c) for c in self.sensitive]
        unknown = [c for c in sensitive if c not in layout.columns]
        if unknown:
            raise ConfigError(
                f"sensitive column(s) {unknown} are not demographic columns of the task "
                f"{layout.columns}"
            )
        ctx = current_context()
        device = ctx.local_device(resolve_device(self.device))
        rng = as_numpy_rng(self.random_state)
        names = ("init", "train", "sample")
        seeds = dict(zip(names, broadcast_ints([seed_from_rng(rng) for _ in names], ctx),
                         strict=True))  # fmt: skip

        groups = np.zeros(task.n_patients, dtype=np.int64)
        group_names: list[str] = []
        if sensitive:
            groups, group_names = group_ids(task, sensitive)
        weights = self._group_weight_tensor(group_names)
        if loss_fn is not None and len(group_names) < 2:
            raise DataError(
                f"the fairness loss needs at least two groups of {sensitive}, the task has "
                f"{group_names}"
            )
        packed = PackedVisits(task.visits, len(vocab), int(self.max_visits))
        if packed.n_truncated:
            logger.info(
                "%d patient(s) have more than max_visits=%d visits; their last %d are used",
                packed.n_truncated, self.max_visits, self.max_visits,
            )  # fmt: skip
        demo = layout.encode(task.demographics)
        prefix = np.concatenate([demo, task.label[:, None].astype(np.float32)], axis=1)

        ckpt = None
        if checkpoint_dir is not None:
            from equisynth.diffusion.checkpoint import Checkpointer

            ckpt = Checkpointer(checkpoint_dir, every=checkpoint_every, resume=resume, context=ctx)
            meta = ckpt.peek_meta()
            if meta is not None:
                seeds = {k: int(v) for k, v in meta["extra"]["seeds"].items()}
            ckpt.extra["seeds"] = seeds
        elif checkpoint_every is not None or resume:
            raise ConfigError("checkpoint_every and resume need a checkpoint_dir")

        with torch_rng_scope(seeds["init"], device):
            model = HALONetwork(
                layout.n_prefix, len(vocab), d_model=int(self.d_model),
                n_layers=int(self.n_layers), n_heads=int(self.n_heads),
                max_visits=int(self.max_visits), n_code_layers=int(self.n_code_layers),
                dropout=float(self.dropout),
            )  # fmt: skip
        if init is not None:
            model.load_state_dict(init.model_.state_dict())
        else:
            _init_output_biases(model, prefix, packed)
        model.to(device)
        data = TrainData(
            prefix=torch.as_tensor(prefix, device=device),
            label=torch.as_tensor(task.label, dtype=torch.float32, device=device),
            groups=torch.as_tensor(groups, device=device),
            visits=packed.to(device),
            n_groups=max(2, len(group_names)),
        )
        if ckpt is not None:
            ckpt.fingerprint = self._fingerprint(layout, vocab, prefix, packed, init, device)
        self.layout_, self.vocab_, self.task_name_ = layout, vocab, str(task.task)
        self.sensitive_, self.group_names_ = sensitive, group_names
        self.device_ = device
        with torch_rng_scope(seeds["train"], device):  # dropout uses torch's global RNG
            self.history_ = train_halo(
                model, data, n_epochs=int(self.n_epochs), batch_size=int(self.batch_size),
                lr=float(self.lr), fairness=loss_fn, fairness_lambda=float(self.fairness_lambda),
                group_weights=None if weights is None else weights.to(device),
                seed=seeds["train"], ctx=ctx, device=device, checkpointer=ckpt,
                verbose=bool(self.verbose),
            )  # fmt: skip
        self.model_ = model.eval()
        self.sample_seed_ = seeds["sample"]
        self.n_patients_ = task.n_patients
        return self

    def _check_init(self, init, task, layout):
        if not isinstance(init, HALOGenerator) or not hasattr(init, "model_"):
            raise ConfigError("init must be a fitted HALOGenerator")
        diff = [k for k in _ARCH if getattr(init, k) != getattr(self, k)]
        if diff:
            raise ConfigError(
                "init has another architecture: "
                + ", ".join(f"{k}={getattr(init, k)!r} (here {getattr(self, k)!r})" for k in diff)
            )
        if list(task.vocab) != list(init.vocab_):
            raise DataError(
                "the task's vocabulary differs from init's; warm starts need the same vocabulary"
            )
        if layout.columns != init.layout_.columns:
            raise DataError(
                f"the task's demographic columns {layout.columns} differ from init's "
                f"{init.layout_.columns}"
            )
        init.layout_.encode(task.demographics)  # DataError naming an unknown level
        return init.layout_, list(init.vocab_)

    def _group_weight_tensor(self, group_names):
        if not self.group_weights:
            return None
        import torch

        if not isinstance(self.group_weights, Mapping):
            raise ConfigError(
                "group_weights must be a mapping group label -> weight, got "
                f"{type(self.group_weights).__name__}"
            )
        sensitive = [str(c) for c in self.sensitive]
        malformed = [
            g for g in self.group_weights
            if not isinstance(g, str) or [part.split("=", 1)[0] for part in g.split(" & ")]
            != sensitive
        ]  # fmt: skip
        if malformed:
            raise ConfigError(
                f"group_weights keys must be group labels of {sensitive} such as "
                f"{group_names[0]!r}, got {malformed[:3]}; groups in the task: {group_names}"
            )
        absent = [g for g in self.group_weights if g not in group_names]
        if absent:  # e.g. a rare group missing from a training split: nothing to weigh
            logger.warning("group_weights for group(s) %s ignored: not in the task", absent)
        w = np.ones(max(2, len(group_names)))
        for g, v in self.group_weights.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < np.inf:
                raise ConfigError(f"group_weights[{g!r}] must be a finite number >= 0, got {v!r}")
            if g in group_names:
                w[group_names.index(g)] = float(v)
        if not w.any():
            raise ConfigError("group_weights are all 0; give at least one positive weight")
        return torch.as_tensor(w, dtype=torch.float32)

    def _fingerprint(self, layout, vocab, prefix, packed, init, device) -> dict:
        params = _jsonable_params(self.get_params(), saving=False)
        for key in ("n_epochs", "batch_size", "device", "random_state", "verbose"):
            params.pop(key, None)  # may change on resume (more epochs, other world size)
        digest = hashlib.sha256(np.ascontiguousarray(prefix).tobytes())
        digest.update(json.dumps([layout.to_dict(), vocab]).encode())
        digest.update(packed.digest().encode())
        init_digest = None
        if init is not None:
            h = hashlib.sha256()
            for k, v in sorted(init.model_.state_dict().items()):
                h.update(k.encode() + v.detach().cpu().numpy().tobytes())
            init_digest = h.hexdigest()
        return {
            "kind": _KIND,
            "device_type": device.type,
            "params": params,
            "data_sha256": digest.hexdigest(),
            "init_sha256": init_digest,
        }

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("this HALOGenerator is not fitted yet; call fit(task) first")

    def _label_logits(self, demographic_bits):
        """Differentiable logits of ``P(label = 1 | demographics)`` for bits (n, d) on device."""
        h0 = self.model_.contexts(None, None, n=1)[:, 0]
        return self.model_.label_logits(h0, demographic_bits)

    def label_probability(self, task: SequenceTask | pd.DataFrame) -> np.ndarray:
        """The model's ``P(label = 1 | demographics)`` for every patient (or row) of ``task``.

        Parameters
        ----------
        task : SequenceTask or DataFrame with the demographic columns
        """
        import torch

        self._check_fitted()
        frame = task.demographics if isinstance(task, SequenceTask) else task
        if not isinstance(frame, pd.DataFrame):
            raise DataError(
                f"label_probability expects a SequenceTask or a DataFrame, got {type(task).__name__}"
            )
        bits = torch.as_tensor(self.layout_.encode(frame), device=self.device_)
        with torch.no_grad():
            return torch.sigmoid(self._label_logits(bits)).cpu().numpy().astype(np.float64)

    def sample(
        self,
        n: int | None = None,
        *,
        conditions: pd.DataFrame | None = None,
        random_state=None,
        chunk_size: int = 2048,
    ) -> SequenceTask:
        """Generate synthetic patients.

        Parameters
        ----------
        n : int, optional
            Number of patients drawn from the model (demographics and label included); not
            needed with ``conditions``.
        conditions : DataFrame, optional
            One synthetic patient per row: every demographic column (values must be levels
            seen in fit) and optionally ``label`` (0/1; missing values are drawn from
            ``P(label | demographics)``). These prefix bits are fixed, the rest is drawn.
        random_state : int, Generator or None
            Seed of this draw; ``None`` uses a seed fixed at fit time, so repeated calls of a
            fitted (or loaded) model give the same patients.
        chunk_size : int, default=2048
            Patients drawn at a time (memory bound).

        Returns
        -------
        SequenceTask
            ``is_synthetic`` all True, ids ``synth-000000``..., the fitted vocabulary; every
            patient has at least one visit with at least one code.
        """
        import torch

        self._check_fitted()
        fixed, values = self._conditions(n, conditions)
        m = fixed.shape[0]
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        rng = as_numpy_rng(self.sample_seed_ if random_state is None else random_state)
        gen = torch.Generator(device=self.device_)
        gen.manual_seed(seed_from_rng(rng))
        prefixes, visits = [], []
        model = self.model_.eval()
        for start in range(0, m, chunk_size):
            sl = slice(start, start + chunk_size)
            prefix, dense, lengths = model.sample(
                torch.as_tensor(fixed[sl], device=self.device_),
                torch.as_tensor(values[sl], device=self.device_),
                one_hot=self.layout_.one_hot, max_visits=int(self.max_visits), generator=gen,
            )  # fmt: skip
            prefixes.append(prefix.cpu().numpy())
            dense, lengths = dense.cpu().numpy(), lengths.cpu().numpy()
            for i in range(dense.shape[0]):
                visits.append([np.flatnonzero(dense[i, t]) for t in range(int(lengths[i]))])
        bits = np.concatenate(prefixes) if prefixes else np.zeros((0, self.layout_.n_prefix))
        demographics, label = self.layout_.decode(bits)
        return SequenceTask(
            patient_ids=np.array([f"synth-{i:06d}" for i in range(m)], dtype=str),
            demographics=demographics,
            label=label,
            visits=visits,
            vocab=list(self.vocab_),
            task=self.task_name_,
            is_synthetic=np.ones(m, dtype=bool),
        )

    def _conditions(self, n, conditions) -> tuple[np.ndarray, np.ndarray]:
        """Fixed-bit mask and values (m, n_prefix) of the requested patients."""
        p = self.layout_.n_prefix
        if conditions is None:
            if n is None or isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
                raise ConfigError(f"sample needs n (an integer >= 0) or conditions, got n={n!r}")
            return np.zeros((int(n), p), dtype=bool), np.zeros((int(n), p), dtype=np.float32)
        if not isinstance(conditions, pd.DataFrame):
            raise DataError(
                f"conditions must be a DataFrame (one row per patient), got "
                f"{type(conditions).__name__}"
            )
        if n is not None and n != len(conditions):
            raise ConfigError(
                f"n={n} but conditions has {len(conditions)} rows; give one or the other"
            )
        extra = [c for c in conditions.columns if c not in self.layout_.columns and c != "label"]
        if extra:
            raise DataError(
                f"conditions has column(s) {extra} that the generator does not know; expected "
                f"the demographic columns {self.layout_.columns} and optionally 'label'"
            )
        m = len(conditions)
        demo = self.layout_.encode(conditions.reset_index(drop=True))
        fixed = np.zeros((m, p), dtype=bool)
        values = np.zeros((m, p), dtype=np.float32)
        fixed[:, :-1] = True
        values[:, :-1] = demo
        if "label" in conditions.columns:
            lab = pd.to_numeric(conditions["label"], errors="coerce").to_numpy(dtype=float)
            bad = ~np.isnan(lab) & ~np.isin(lab, (0.0, 1.0))
            if bad.any() or (np.isnan(lab) & conditions["label"].notna().to_numpy()).any():
                raise DataError(
                    "conditions column 'label' must hold 0, 1 or missing values (drawn), got "
                    f"{sorted(set(conditions['label'].astype(str)))[:5]}"
                )
            known = ~np.isnan(lab)
            fixed[:, -1] = known
            values[known, -1] = lab[known]
        return fixed, values

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Save as a model directory: ``config.json`` (format version, vocab, demographic
        levels, checksums) + ``model.safetensors``. No pickle."""
        from equisynth.generators._modelfile import write_model_dir

        self._check_fitted()
        params = _jsonable_params(self.get_params())
        config = {
            "params": params,
            "layout": self.layout_.to_dict(),
            "vocab": self.vocab_,
            "task": self.task_name_,
            "sensitive": self.sensitive_,
            "group_names": self.group_names_,
            "sample_seed": self.sample_seed_,
            "n_patients": self.n_patients_,
            "history": self.history_,
        }
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.model_.state_dict().items()}
        return write_model_dir(
            path, kind=_KIND, format_version=FORMAT_VERSION, config=config, tensors=tensors,
            overwrite=overwrite,
        )  # fmt: skip

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> HALOGenerator:
        """Load a generator saved with :meth:`save`; weights land on ``device`` (CPU default)."""
        from equisynth.generators._ehr_data import PrefixLayout
        from equisynth.generators._halo import HALONetwork
        from equisynth.generators._modelfile import read_model_dir

        config, tensors, _ = read_model_dir(path, kind=_KIND, format_version=FORMAT_VERSION)
        try:
            params = dict(config["params"])
            params["device"] = device
            params["sensitive"] = list(params["sensitive"])
            gen = cls(**params)
            gen.layout_ = PrefixLayout.from_dict(config["layout"])
            gen.vocab_ = [str(v) for v in config["vocab"]]
            gen.task_name_ = str(config["task"])
            gen.sensitive_ = list(config["sensitive"])
            gen.group_names_ = list(config["group_names"])
            gen.sample_seed_ = int(config["sample_seed"])
            gen.n_patients_ = int(config["n_patients"])
            gen.history_ = list(config["history"])
            gen._check_params()
            model = HALONetwork(
                gen.layout_.n_prefix, len(gen.vocab_), d_model=int(gen.d_model),
                n_layers=int(gen.n_layers), n_heads=int(gen.n_heads),
                max_visits=int(gen.max_visits), n_code_layers=int(gen.n_code_layers),
                dropout=float(gen.dropout),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(
                f"model directory {path} has an invalid config.json ({type(exc).__name__}: {exc})"
            ) from exc
        try:
            model.load_state_dict(tensors)
        except RuntimeError as exc:
            raise ModelFileError(
                f"weights in {path} do not match the model described by config.json: {exc}"
            ) from exc
        gen.device_ = resolve_device(device)
        gen.model_ = model.to(gen.device_).eval()
        return gen


def _init_output_biases(model, prefix: np.ndarray, packed) -> None:
    """Start every bit at its training frequency (output biases = logit of the marginal)."""
    import torch

    def logit(freq):
        f = np.clip(np.asarray(freq, dtype=np.float64), 1e-4, 1 - 1e-4)
        return torch.as_tensor(np.log(f / (1 - f)), dtype=torch.float32)

    n, visits = prefix.shape[0], int(packed.lengths.sum())
    end = n / (n + visits)  # one END per patient among all visit targets
    with torch.no_grad():
        model.prefix_head.context[-1].bias.copy_(logit(prefix.mean(axis=0)))
        model.visit_head.context[-1].bias.copy_(
            logit(np.concatenate([[end], packed.code_frequency()]))
        )


def _jsonable_params(params: dict, *, saving: bool = True) -> dict:
    """JSON-safe hyperparameters. A fairness callable cannot be saved: when ``saving`` it is
    dropped (with ``fairness_lambda`` and ``group_weights``, which only matter in fit), else
    recorded by name."""
    out = {}
    for key, value in params.items():
        if isinstance(value, np.random.Generator | np.random.RandomState):
            value = None  # a live generator cannot be saved; the fitted seeds are saved instead
        elif key == "fairness" and value is not None and not isinstance(value, str):
            name = str(getattr(value, "name", getattr(value, "__name__", type(value).__name__)))
            value = name if getattr(value, "builtin", False) or not saving else None
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, np.integer):
            value = int(value)
        out[key] = value
    if saving and out.get("fairness") is None and params.get("fairness") is not None:
        logger.warning("the fairness callable is not saved (only fit uses it)")
        out["fairness_lambda"], out["group_weights"] = 0.0, None
    json.dumps(out)  # fail early (TypeError) on anything else
    return out
