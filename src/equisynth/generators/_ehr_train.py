"""Training loop of the EHR generator: data-parallel, checkpointed, resumable.

Every rank draws the same *global* batch of ``world_size * batch_size`` patients (a fresh
permutation per epoch, seeded from the run's seed and the epoch, so the data order needs no
state) and trains on its contiguous slice under ``DistributedDataParallel``. The NLL is a mean
over the rank's patients, so the average of the ranks' gradients is the gradient of the global
mean. The fairness term is a non-linear function of the whole batch (group rates), so every rank
evaluates it on the *global* batch (cheap: only the prefix head, whose START context is the same
for every patient); its gradient is then identical on every rank and DDP's average leaves it
unchanged. ``k`` ranks with batch ``b`` therefore follow one process with batch ``k * b`` up to
float summation order (without dropout, whose masks depend on the batch shape).
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from equisynth.diffusion.checkpoint import Checkpointer, InterruptGuard
from equisynth.diffusion.distributed import DistContext, all_reduce_mean, wrap_model
from equisynth.exceptions import ConfigError, TrainingInterrupted
from equisynth.generators._ehr_data import PackedVisits

__all__ = ["TrainData", "train_halo"]

logger = logging.getLogger(__name__)


@dataclass
class TrainData:
    """Encoded training patients on the training device."""

    prefix: torch.Tensor  # (n, P) float: demographic bits then the label bit
    label: torch.Tensor  # (n,) float 0/1
    groups: torch.Tensor  # (n,) int64 intersectional group ids
    visits: PackedVisits
    n_groups: int

    @property
    def n(self) -> int:
        return int(self.prefix.shape[0])


def _epoch_permutation(seed: int, epoch: int, n: int, device) -> torch.Tensor:
    gen = torch.Generator().manual_seed((int(seed) + 1_000_003 * int(epoch)) % (2**63 - 1))
    return torch.randperm(n, generator=gen).to(device)


def _state(model, optimizer, step, acc, device) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for pid, st in optimizer.state_dict()["state"].items():
        for name, v in st.items():
            out[f"optim.{pid}.{name}"] = torch.as_tensor(v).detach().cpu().contiguous()
    out["step"] = torch.tensor(int(step), dtype=torch.int64)
    out["acc"] = acc.detach().cpu().to(torch.float64)
    out["rng.cpu"] = torch.random.get_rng_state()
    if device.type == "cuda":
        out["rng.cuda"] = torch.cuda.get_rng_state(device)
    return out


def _restore(model, optimizer, state, device) -> tuple[int, torch.Tensor]:
    model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
    opt = optimizer.state_dict()
    st: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in state.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            st.setdefault(int(pid), {})[name] = v
    opt["state"] = st
    optimizer.load_state_dict(opt)
    torch.random.set_rng_state(state["rng.cpu"])
    if device.type == "cuda" and "rng.cuda" in state:
        torch.cuda.set_rng_state(state["rng.cuda"], device)
    return int(state["step"]), state["acc"].to(device)


def train_halo(
    model: torch.nn.Module,
    data: TrainData,
    *,
    n_epochs: int,
    batch_size: int,
    lr: float,
    fairness=None,
    fairness_lambda: float = 0.0,
    group_weights: torch.Tensor | None = None,
    seed: int,
    ctx: DistContext,
    device: torch.device,
    checkpointer: Checkpointer | None = None,
    verbose: bool = False,
) -> list[dict]:
    """Train ``model`` (a :class:`HALONetwork`) in place; returns one history record per epoch.

    Must run inside ``torch_rng_scope`` (dropout draws from torch's global generator, whose
    state is part of the checkpoints, so a resumed run equals an uninterrupted one).
    """
    n = data.n
    global_bs = int(batch_size) * ctx.world_size
    per_epoch = math.ceil(n / global_bs)
    total = int(n_epochs) * per_epoch
    model.to(device).train()
    net = wrap_model(model, ctx)  # DDP broadcasts rank 0's weights
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    done = 0
    acc = torch.zeros(3, dtype=torch.float64, device=device)  # sum nll, sum fairness, steps
    history: list[dict] = []
    if checkpointer is not None:
        restored = checkpointer.load()
        if restored is not None:
            state, meta = restored
            if int(meta.get("global_batch", global_bs)) != global_bs:
                raise ConfigError(
                    f"the checkpoint was trained with a global batch of {meta['global_batch']} "
                    f"patients, this run has {global_bs} (processes x batch_size); keep the "
                    "product the same to resume"
                )
            if int(meta["step"]) > total:
                raise ConfigError(
                    f"the checkpoint is at step {meta['step']}, beyond the {total} steps of "
                    f"n_epochs={n_epochs}; resume with at least as many epochs"
                )
            done, acc = _restore(model, optimizer, state, device)
            history = list(meta.get("history", []))
            if ctx.is_main:
                logger.info("resumed HALO training from the checkpoint of step %d", done)
    use_fairness = fairness is not None
    lam = float(fairness_lambda)
    shard = ctx.shard(global_bs) if ctx.is_distributed else slice(None)
    show = verbose and ctx.is_main
    bar = tqdm(total=total, initial=done, disable=not show, desc="HALO training", unit="step")
    guard = InterruptGuard() if checkpointer is not None else contextlib.nullcontext()
    offsets = torch.arange(global_bs, device=device)
    perm_epoch, perm = -1, None
    with guard:
        for step in range(done + 1, total + 1):
            epoch, i = divmod(step - 1, per_epoch)
            if epoch != perm_epoch:
                perm, perm_epoch = _epoch_permutation(seed, epoch, n, device), epoch
            idx = perm[(i * global_bs + offsets) % n]  # the same global batch on every rank
            mine = idx[shard]
            visits, lengths = data.visits.batch(mine)
            nll, logit = net(
                data.prefix[mine], visits, lengths,
                data.prefix[idx, :-1] if use_fairness else None,
            )  # fmt: skip
            loss = nll
            fair = torch.zeros((), device=device)
            if use_fairness:
                fair = fairness(
                    torch.sigmoid(logit), data.label[idx], data.groups[idx],
                    n_groups=data.n_groups, weights=group_weights,
                )  # fmt: skip
                loss = nll + lam * fair
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            acc = acc + torch.stack([nll.detach().double(), fair.detach().double(),
                                     torch.ones((), dtype=torch.float64, device=device)])  # fmt: skip
            if i == per_epoch - 1:
                steps = float(acc[2])
                mean_nll = all_reduce_mean(acc[0] / steps, ctx)
                mean_fair = float(acc[1]) / steps
                record = {
                    "epoch": epoch + 1,
                    "step": step,
                    "nll": mean_nll,
                    "fairness": mean_fair if use_fairness else None,
                    "loss": mean_nll + lam * mean_fair,
                }
                history.append(record)
                acc = torch.zeros_like(acc)
                if ctx.is_main:
                    logger.debug("epoch %d: %s", epoch + 1, record)
                bar.set_postfix(nll=f"{mean_nll:.3f}", fair=f"{mean_fair:.3f}")
            if show:
                bar.update(1)
            if checkpointer is not None:
                stop = guard.requested(ctx)
                if stop or checkpointer.due(step) or step == total:
                    meta = {
                        "n_epochs": int(n_epochs),
                        "global_batch": global_bs,
                        "world_size": ctx.world_size,
                        "history": history,
                    }
                    path = checkpointer.save(
                        step, _state(model, optimizer, step, acc, device), meta
                    )
                if stop:
                    bar.close()
                    raise TrainingInterrupted(
                        f"training interrupted at step {step} of {total}; checkpoint saved to "
                        f"{path}; rerun with resume=True to continue",
                        step=step,
                        checkpoint=str(path),
                        signum=int(guard.signum or 0),
                    )
    bar.close()
    model.eval()
    return history
