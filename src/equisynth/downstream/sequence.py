"""A small sequence classifier over visits of medical codes (the FairSynth downstream model).

A patient is a sequence of visits; a visit is a set of code ids. Each visit is embedded as the
sum (or mean) of its codes' embeddings (``torch.nn.functional.embedding_bag``), a GRU (default)
or a small transformer encoder reads the visit sequence, its summary is concatenated with the
one-hot demographics (an explicit option, :paramref:`demographics`), and an MLP head gives the
logit of the label, trained with binary cross-entropy. Everything is patient-level: one row per
patient, so a split of the patients is a split of the data.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from equisynth._utils import as_numpy_rng, resolve_device, seed_from_rng, torch_rng_scope
from equisynth.data.tasks import SequenceTask
from equisynth.exceptions import ConfigError, DataError, NotFittedError

__all__ = ["SequenceClassifier", "encode_visits"]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- encoding
class EncodedVisits:
    """Flat arrays of a task's (last ``max_visits``) visits, for fast batch assembly.

    ``codes`` holds every code id, visit after visit; ``code_start`` / ``code_len`` locate each
    visit's codes; ``visit_start`` / ``n_visits`` locate each patient's visits.
    """

    def __init__(self, visits: Sequence[Sequence[np.ndarray]], max_visits: int) -> None:
        kept = [p[-max_visits:] for p in visits]
        self.n_visits = np.array([len(p) for p in kept], dtype=np.int64)
        flat = [v for p in kept for v in p]
        self.code_len = np.array([len(v) for v in flat], dtype=np.int64)
        self.codes = np.concatenate(flat).astype(np.int64) if flat else np.zeros(0, dtype=np.int64)
        self.code_start = np.concatenate([[0], np.cumsum(self.code_len)[:-1]]).astype(np.int64)
        self.visit_start = np.concatenate([[0], np.cumsum(self.n_visits)[:-1]]).astype(np.int64)

    @staticmethod
    def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Concatenation of ``range(s, s + l)`` for every (s, l), without a Python loop."""
        total = int(lengths.sum())
        offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
        return np.repeat(starts, lengths) + (np.arange(total) - offsets)

    def batch(self, idx: np.ndarray):
        """(codes, bag offsets, visits per patient, within-patient visit positions) of ``idx``."""
        nv = self.n_visits[idx]
        vis = self._ranges(self.visit_start[idx], nv)
        lens = self.code_len[vis]
        codes = self.codes[self._ranges(self.code_start[vis], lens)]
        offsets = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        position = np.arange(len(vis)) - np.repeat(np.cumsum(nv) - nv, nv)
        return codes, offsets, nv, position


def encode_visits(task: SequenceTask, max_visits: int) -> EncodedVisits:
    """The :class:`EncodedVisits` of ``task`` (each patient's last ``max_visits`` visits)."""
    return EncodedVisits(task.visits, max_visits)


def _one_hot(demo: pd.DataFrame, levels: dict[str, list[str]]) -> np.ndarray:
    """One-hot demographics over the fitted levels (an unseen level is all zeros)."""
    blocks = []
    for col, lv in levels.items():
        values = demo[col].astype(str).to_numpy()
        blocks.append((values[:, None] == np.asarray(lv, dtype=object)[None, :]).astype(np.float32))
    if not blocks:
        return np.zeros((len(demo), 0), dtype=np.float32)
    return np.concatenate(blocks, axis=1)


# ---------------------------------------------------------------------------- network
def _build_network(kind, n_codes, d_model, n_layers, n_heads, n_demo, max_visits, dropout, pool):
    import torch
    from torch import nn

    class _Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Parameter(torch.randn(n_codes, d_model) * d_model**-0.5)
            if kind == "gru":
                self.encoder = nn.GRU(d_model, d_model, num_layers=n_layers, batch_first=True)
            else:
                self.position = nn.Embedding(max_visits, d_model)
                layer = nn.TransformerEncoderLayer(
                    d_model,
                    n_heads,
                    dim_feedforward=2 * d_model,
                    dropout=dropout,
                    batch_first=True,
                )
                self.encoder = nn.TransformerEncoder(
                    layer, num_layers=n_layers, enable_nested_tensor=False
                )
            self.head = nn.Sequential(
                nn.Linear(d_model + n_demo, d_model),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(d_model, 1),
            )

        def forward(self, codes, offsets, nv, position, demo):
            visits = nn.functional.embedding_bag(codes, self.embedding, offsets, mode=pool)
            batch, width = len(nv), int(nv.max())
            rows = torch.repeat_interleave(torch.arange(batch, device=codes.device), nv)
            padded = visits.new_zeros(batch, width, visits.shape[1])
            padded[rows, position] = visits
            if kind == "gru":
                packed = nn.utils.rnn.pack_padded_sequence(
                    padded, nv.cpu(), batch_first=True, enforce_sorted=False
                )
                _, h = self.encoder(packed)
                summary = h[-1]
            else:
                pos = torch.arange(width, device=codes.device)
                mask = pos[None, :] >= nv[:, None]  # True = padding
                x = self.encoder(padded + self.position(pos)[None], src_key_padding_mask=mask)
                keep = (~mask).unsqueeze(-1).to(x.dtype)
                summary = (x * keep).sum(1) / keep.sum(1)
            return self.head(torch.cat([summary, demo], dim=1)).squeeze(1)

    return _Net()


# ---------------------------------------------------------------------------- estimator
class SequenceClassifier(BaseEstimator):
    """GRU (or small transformer) over visits of codes, plus demographics, for a 0/1 label.

    Parameters
    ----------
    kind : {"gru", "transformer"}, default="gru"
        Sequence model over the visit embeddings: a GRU (its last hidden state summarises the
        patient) or a transformer encoder with learned visit positions (mean over visits).
    d_model : int, default=64
        Width of the code embeddings, of the sequence model and of the head's hidden layer.
    n_layers : int, default=1
    n_heads : int, default=4
        Attention heads (transformer only; must divide ``d_model``).
    max_visits : int, default=50
        Only each patient's last ``max_visits`` visits are read.
    visit_pooling : {"sum", "mean"}, default="sum"
        How a visit's code embeddings are combined.
    demographics : bool or sequence of str, default=True
        Demographic columns given to the model as one-hot inputs: all of them (``True``), none
        (``False``) or the named ones. Keep it the same for every arm of an experiment.
    dropout : float, default=0.1
        Dropout in the head (and the transformer layers); never on the output.
    n_epochs : int, default=20
    batch_size : int, default=64
    lr : float, default=3e-3
    weight_decay : float, default=1e-4
        AdamW weight decay.
    pos_weight : None, "balanced" or float, default=None
        Weight of the positive class in the loss; ``"balanced"`` uses #negatives / #positives of
        the training set. ``None`` trains on the data as given, so that the label mix of an
        augmented training set is what the model learns from.
    threshold : float, default=0.5
        :meth:`predict` returns ``predict_proba(task)[:, 1] >= threshold``.
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    random_state : None, int or numpy Generator
        Seeds the initialisation (inside :func:`equisynth._utils.torch_rng_scope`), dropout and
        the order of the mini-batches.
    verbose : bool, default=False
        Progress bar over epochs.

    Attributes
    ----------
    vocab_ : list of str
        The code vocabulary of the training task (tasks given to predict must share it).
    demographic_levels_ : dict of str to list of str
        The one-hot levels of each demographic input column.
    model_ : torch.nn.Module
    loss_history_ : list of float
        Mean training loss of every epoch.
    classes_ : ndarray ``[0, 1]``

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from equisynth.data.tasks import SequenceTask
    >>> rng = np.random.default_rng(0)
    >>> visits = [[rng.choice(6, size=2, replace=False)] for _ in range(80)]
    >>> label = np.array([int(3 in v[0]) for v in visits])
    >>> task = SequenceTask(patient_ids=np.arange(80).astype(str),
    ...                     demographics=pd.DataFrame({"sex": rng.choice(["F", "M"], 80)}),
    ...                     label=label, visits=visits, vocab=[f"dx:{i}" for i in range(6)])
    >>> clf = SequenceClassifier(d_model=8, n_epochs=30, random_state=0).fit(task)
    >>> clf.predict_proba(task).shape
    (80, 2)
    """

    def __init__(
        self,
        *,
        kind: Literal["gru", "transformer"] = "gru",
        d_model: int = 64,
        n_layers: int = 1,
        n_heads: int = 4,
        max_visits: int = 50,
        visit_pooling: Literal["sum", "mean"] = "sum",
        demographics: bool | Sequence[str] = True,
        dropout: float = 0.1,
        n_epochs: int = 20,
        batch_size: int = 64,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        pos_weight: Literal["balanced"] | float | None = None,
        threshold: float = 0.5,
        device: str = "cpu",
        random_state=None,
        verbose: bool = False,
    ) -> None:
        self.kind = kind
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.max_visits = max_visits
        self.visit_pooling = visit_pooling
        self.demographics = demographics
        self.dropout = dropout
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.pos_weight = pos_weight
        self.threshold = threshold
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _validate_params(self) -> None:
        if self.kind not in ("gru", "transformer"):
            raise ConfigError(f"kind must be 'gru' or 'transformer', got {self.kind!r}")
        if self.visit_pooling not in ("sum", "mean"):
            raise ConfigError(f"visit_pooling must be 'sum' or 'mean', got {self.visit_pooling!r}")
        for name in ("d_model", "n_layers", "n_heads", "max_visits", "n_epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.kind == "transformer" and self.d_model % self.n_heads:
            raise ConfigError(
                f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads}) for "
                "kind='transformer'"
            )
        for name in ("lr",):
            if not (isinstance(getattr(self, name), (int, float)) and getattr(self, name) > 0):
                raise ConfigError(f"{name} must be a positive number, got {getattr(self, name)!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not (isinstance(self.threshold, (int, float)) and 0 < self.threshold < 1):
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold!r}")
        pw = self.pos_weight
        if not (pw is None or pw == "balanced" or (isinstance(pw, (int, float)) and pw > 0)):
            raise ConfigError(
                f"pos_weight must be None, 'balanced' or a positive number, got {pw!r}"
            )

    @staticmethod
    def _check_task(task, what: str) -> SequenceTask:
        if not isinstance(task, SequenceTask):
            raise DataError(
                f"{what} expects a SequenceTask (equisynth.data.tasks), got {type(task).__name__}"
            )
        if task.n_patients == 0:
            raise DataError(f"{what} got a task with no patient")
        return task

    def _demographic_columns(self, task: SequenceTask) -> list[str]:
        cols = list(task.demographics.columns)
        if self.demographics is True:
            return cols
        if self.demographics is False or self.demographics is None:
            return []
        if isinstance(self.demographics, str):
            wanted = [self.demographics]
        else:
            wanted = list(self.demographics)
        missing = [c for c in wanted if c not in cols]
        if missing:
            raise DataError(
                f"demographics {missing} are not columns of the task; its demographics are {cols}"
            )
        return wanted

    # ------------------------------------------------------------------ fit
    def fit(self, task: SequenceTask) -> SequenceClassifier:
        """Train on every patient of ``task`` (real and synthetic alike)."""
        import torch
        from tqdm.auto import tqdm

        self._validate_params()
        task = self._check_task(task, "fit")
        y = task.label
        if len(np.unique(y)) < 2:
            raise DataError(
                f"fit needs both label classes; the task {task.task!r} has only label "
                f"{int(y[0])} among its {task.n_patients} patients"
            )
        device = resolve_device(self.device)
        rng = as_numpy_rng(self.random_state)
        seed = seed_from_rng(rng)
        self.vocab_ = list(task.vocab)
        self.demographic_levels_ = {
            c: sorted(task.demographics[c].astype(str).unique().tolist())
            for c in self._demographic_columns(task)
        }
        self.classes_ = np.array([0, 1])
        self.device_ = device
        enc = encode_visits(task, self.max_visits)
        demo = torch.as_tensor(_one_hot(task.demographics, self.demographic_levels_))
        target = torch.as_tensor(y, dtype=torch.float32)
        if self.pos_weight == "balanced":
            pw = float((y == 0).sum() / max(1, (y == 1).sum()))
        else:
            pw = None if self.pos_weight is None else float(self.pos_weight)
        weight = None if pw is None else torch.tensor(pw, device=device)
        n = task.n_patients
        self.loss_history_ = []
        with torch_rng_scope(seed, device):
            model = _build_network(
                self.kind,
                task.n_codes,
                self.d_model,
                self.n_layers,
                self.n_heads,
                demo.shape[1],
                self.max_visits,
                float(self.dropout),
                self.visit_pooling,
            ).to(device)
            opt = torch.optim.AdamW(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            model.train()
            for _ in tqdm(range(self.n_epochs), desc="downstream", disable=not self.verbose):
                order = rng.permutation(n)
                total = 0.0
                for start in range(0, n, self.batch_size):
                    idx = order[start : start + self.batch_size]
                    logits = model(*self._tensors(enc, idx, device), demo[idx].to(device))
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(
                        logits, target[idx].to(device), pos_weight=weight
                    )
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(idx)
                self.loss_history_.append(total / n)
        model.eval()
        self.model_ = model
        logger.info(
            "SequenceClassifier(%s) trained on %d patients, final loss %.4f",
            self.kind,
            n,
            self.loss_history_[-1],
        )
        return self

    @staticmethod
    def _tensors(enc: EncodedVisits, idx: np.ndarray, device):
        import torch

        codes, offsets, nv, position = enc.batch(idx)
        return (
            torch.as_tensor(codes, device=device),
            torch.as_tensor(offsets, device=device),
            torch.as_tensor(nv, device=device),
            torch.as_tensor(position, device=device),
        )

    # ------------------------------------------------------------------ predict
    def predict_proba(self, task: SequenceTask) -> np.ndarray:
        """Probabilities ``(n, 2)`` of label 0 and label 1 (float64)."""
        import torch

        if not hasattr(self, "model_"):
            raise NotFittedError("this SequenceClassifier is not fitted yet; call fit(task) first")
        task = self._check_task(task, "predict_proba")
        if list(task.vocab) != self.vocab_:
            raise DataError(
                f"the task's vocabulary ({task.n_codes} codes) differs from the one the model was "
                f"trained on ({len(self.vocab_)} codes); build both tasks from the same vocabulary"
            )
        missing = [c for c in self.demographic_levels_ if c not in task.demographics.columns]
        if missing:
            raise DataError(f"the task lacks the demographic column(s) {missing} used in fit")
        enc = encode_visits(task, self.max_visits)
        demo = torch.as_tensor(_one_hot(task.demographics, self.demographic_levels_))
        out = []
        with torch.no_grad():
            for start in range(0, task.n_patients, 512):
                idx = np.arange(start, min(start + 512, task.n_patients))
                logits = self.model_(
                    *self._tensors(enc, idx, self.device_), demo[idx].to(self.device_)
                )
                out.append(torch.sigmoid(logits).double().cpu().numpy())
        p1 = np.concatenate(out)
        return np.column_stack([1.0 - p1, p1])

    def predict(self, task: SequenceTask) -> np.ndarray:
        """0/1 predictions: ``predict_proba(task)[:, 1] >= threshold``."""
        return (self.predict_proba(task)[:, 1] >= self.threshold).astype(np.int64)
