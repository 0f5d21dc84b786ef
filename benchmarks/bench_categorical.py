"""Cost of the categorical (multinomial) diffusion loss: closed form vs the posterior tables.

Shape of diabetes130's categorical part as the generator encodes it (35 columns, 2,456 levels in
total; the three ICD-9 columns have 716-789 levels) plus a small table (4 columns, 14 levels).
Times loss + backward of one batch with ``MultinomialDiffusion.loss`` (closed-form KL) and
``loss_reference`` (full posterior tables), in CPU seconds of this process (robust to other jobs
on the machine), median of ``--repeats`` interleaved runs.

Usage::

    python benchmarks/bench_categorical.py [--batch 1024] [--repeats 7] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from equisynth.diffusion.multinomial import MultinomialDiffusion
from equisynth.diffusion.schedules import cosine_betas

SHAPES = {
    "diabetes130 (35 columns, 2,456 levels)": [5, 17, 72, 26, 17, 10, 789, 748, 716]
    + [2] * 10
    + [4] * 16,
    "small (4 columns, 14 levels)": [2, 3, 5, 4],
}


def cpu_ms(fn, logits, x0, t, m) -> float:
    lg = logits.clone().requires_grad_()
    start = time.process_time()
    fn(lg, x0, m.q_sample(x0, t, None), t).backward()
    return 1000 * (time.process_time() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(0)
    print("| categorical part | loss (closed form) | loss_reference (tables) | ratio |")
    print("|---|---|---|---|")
    for name, cards in SHAPES.items():
        m = MultinomialDiffusion(cards, cosine_betas(1000))
        logits = torch.randn(a.batch, m.total, generator=gen)
        x0 = torch.stack([torch.randint(0, k, (a.batch,), generator=gen) for k in cards], 1)
        t = torch.randint(0, 1000, (a.batch,), generator=gen)
        fast, ref = [], []
        for _ in range(a.repeats + 1):  # first round is a warm-up
            fast.append(cpu_ms(m.loss, logits, x0, t, m))
            ref.append(cpu_ms(m.loss_reference, logits, x0, t, m))
        f, r = statistics.median(fast[1:]), statistics.median(ref[1:])
        print(f"| {name}, batch {a.batch} | {f:.1f} ms | {r:.1f} ms | {r / f:.1f}x |")


if __name__ == "__main__":
    main()
