"""Benchmark of the diffusion core: Trainer overhead vs a bare loop, and fast-sampler speed.

The network is the generator's default denoiser (``TabularDiffusionGenerator().hidden`` /
``dim_t``) on a 10-column table (6 numeric, 4 categorical with 2-5 levels, 4 conditions). The
bare loop is the same network, batch, loss and optimiser without the Trainer (no EMA, no
condition dropout, no logging); repeats are interleaved and the median is reported. Sampling uses
the generator's default fast sampler (strided DDIM with its ``eta``) at ``--sample-steps``.

Usage::

    python benchmarks/bench_diffusion.py --out bench_diffusion.json [--quick] [--device cpu]
        [--threads N]

Prints a Markdown table and writes the raw numbers as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from equisynth.diffusion import (
    GaussianDiffusion,
    MLPDenoiser,
    MultinomialDiffusion,
    Trainer,
    diffusion_loss,
    make_betas,
    sample,
)

D_NUM, CARDS, N_COND, T = 6, [2, 3, 5, 4], 4, 1000


def _defaults():
    from equisynth.generators.tabular import TabularDiffusionGenerator

    return TabularDiffusionGenerator().get_params()


DEFAULTS = _defaults()


def make_data(n, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    x_num = torch.randn(n, D_NUM, generator=g)
    x_cat = torch.stack([torch.randint(0, k, (n,), generator=g) for k in CARDS], 1)
    cond = torch.randint(0, N_COND, (n,), generator=g)
    return x_num.to(device), x_cat.to(device), cond.to(device)


def make_model(device, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLPDenoiser(
            D_NUM, CARDS, N_COND, hidden=tuple(DEFAULTS["hidden"]), dim_t=DEFAULTS["dim_t"]
        ).to(device)


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def bare_loop(steps, batch, data, g, m, device):
    x_num, x_cat, cond = data
    model = make_model(device)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    gen = torch.Generator(device=device).manual_seed(0)
    n = cond.shape[0]
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, n, (batch,), generator=gen, device=device)
        t = torch.randint(0, T, (batch,), generator=gen, device=device)
        loss = diffusion_loss(model, g, m, x_num[idx], x_cat[idx], cond[idx], t, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return steps / (time.perf_counter() - t0)


def trainer_loop(steps, batch, data, g, m, device):
    model = make_model(device)
    tr = Trainer(
        n_iter=steps,
        batch_size=batch,
        lr=2e-3,
        weight_decay=1e-4,
        ema_decay=0.999,
        cond_drop_prob=0.1,
        device=device,
        progress=False,
        log_every=100,
    )
    sync(device)
    t0 = time.perf_counter()
    tr.fit(model, g, m, *data, torch.Generator(device=device).manual_seed(0))
    sync(device)
    return steps / (time.perf_counter() - t0)


def sampling_rate(n_rows, n_steps, g, m, device, seed):
    """(rows per wall-clock second, rows per CPU second of this process)."""
    model = make_model(device).eval()
    cond = torch.arange(n_rows, device=device) % N_COND
    sync(device)
    c0 = time.process_time()
    t0 = time.perf_counter()
    sample(
        model,
        g,
        m,
        cond,
        n_steps=n_steps,
        method="ddim",
        eta=DEFAULTS["eta"],
        guidance_scale=1.0,
        generator=torch.Generator(device=device).manual_seed(seed),
        d_num=D_NUM,
        cardinalities=CARDS,
    )
    sync(device)
    return n_rows / (time.perf_counter() - t0), n_rows / (time.process_time() - c0)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", help="tiny run to check the script works")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--train-steps", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--sample-steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.quick:
        a.repeats, a.train_steps, a.rows = 2, 5, 1000
    betas = make_betas(DEFAULTS["schedule"], T)
    g, m = GaussianDiffusion(betas), MultinomialDiffusion(CARDS, betas)
    data = make_data(20_000, a.device)
    bare_loop(50, a.batch_size, data, g, m, a.device)  # warm-up (thread pools, allocator)
    trainer_loop(50, a.batch_size, data, g, m, a.device)
    bare, trn = [], []
    for _ in range(a.repeats):  # interleaved
        bare.append(bare_loop(a.train_steps, a.batch_size, data, g, m, a.device))
        trn.append(trainer_loop(a.train_steps, a.batch_size, data, g, m, a.device))
    both = [
        sampling_rate(a.rows, a.sample_steps, g, m, a.device, s) for s in range(max(3, a.repeats))
    ]
    rates, cpu_rates = [r for r, _ in both], [c for _, c in both]
    res = {
        "device": a.device,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "quick": a.quick,
        "batch_size": a.batch_size,
        "hidden": list(DEFAULTS["hidden"]),
        "eta": DEFAULTS["eta"],
        "train_steps_per_repeat": a.train_steps,
        "repeats": a.repeats,
        "bare_steps_per_s": statistics.median(bare),
        "trainer_steps_per_s": statistics.median(trn),
        # median of the per-repeat ratios: each pair ran back to back, so slow drifts of the
        # machine (warm-up, other load) cancel within a pair
        "overhead_ratio": statistics.median(b / t for b, t in zip(bare, trn, strict=True)),
        "sample_rows": a.rows,
        "sample_steps": a.sample_steps,
        "sample_rows_per_s": statistics.median(rates),
        "sample_rows_per_cpu_s": statistics.median(cpu_rates),
        "raw": {"bare": bare, "trainer": trn, "sampling": rates, "sampling_cpu": cpu_rates},
    }
    with open(a.out, "w") as fh:
        json.dump(res, fh, indent=2)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, hidden {DEFAULTS['hidden']}"
    )
    print("| metric | value |\n|---|---|")
    print(f"| bare loop steps/s (batch {a.batch_size}) | {res['bare_steps_per_s']:.1f} |")
    print(f"| Trainer steps/s | {res['trainer_steps_per_s']:.1f} |")
    print(f"| overhead ratio (bare / Trainer, median of pairs) | {res['overhead_ratio']:.3f} |")
    print(f"| Trainer overhead | {100 * (res['overhead_ratio'] - 1):.1f}% |")
    print(
        f"| DDIM {a.sample_steps} steps rows/s ({a.rows} rows) | {res['sample_rows_per_s']:.0f} |"
    )
    print(f"| same, rows per CPU second of the process | {res['sample_rows_per_cpu_s']:.0f} |")


if __name__ == "__main__":
    main()
