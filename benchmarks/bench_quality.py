"""Quality yardstick of issue 2: how real do the synthetic rows of a starved group look?

Protocol (one seed):

1. ``../shared/data/patient_treatment`` is split into train / test (stratified on SEX x SOURCE,
   ``--test-size``), then only ``--keep-frac`` (10%) of the female training rows are kept;
2. the starved training table is rebalanced (target SOURCE, sensitive SEX) by each method;
3. the synthetic female rows are compared with the HELD-BACK real female rows of the test split
   with a classifier two-sample test (:func:`equisynth.evaluation.quality.fidelity.c2st_auc`,
   gradient boosting, 5-fold AUC; 0.5 = indistinguishable). SEX is dropped (constant); SOURCE is
   kept. The synthetic rows are first subsampled per outcome to the held-back rows' counts, so a
   method is not scored on the outcome mix that the sampling strategy imposes (filling every
   stratum moves P(in | F) from 38% to about 50%: that alone gives an AUC of about 0.56).

Methods: ``real`` (all female training rows, before starving them: the floor), ``random``,
``smote``, ``mcrage`` (the default :class:`~equisynth.TabularDiffusionGenerator`, or the
``--set`` parameters) and ``mcrage-smote-first`` (the generator trained on SMOTE-augmented data).

Sweeps reuse one training run: ``--checkpoints`` scores the EMA model at several training steps
(the learning rate is constant, so step k of a long run is a run of k steps), ``--guidance`` and
``--samplers`` (``ddim:STEPS:ETA`` or ``ddpm``) score several sampling settings of the
same model.

Usage::

    python benchmarks/bench_quality.py --seeds 0 1 2 3 4 --out bench-out/quality.csv
    python benchmarks/bench_quality.py --methods mcrage --set hidden=128,128 --checkpoints 1000 2000 \
        --guidance 1 2 --samplers ddim:50:1 ddpm --seeds 0 1 2 --tag width128 --out sweep.csv
    python benchmarks/bench_quality.py --summary sweep.csv       # print the table of a CSV

Results are appended to ``--out`` as a tidy CSV (``tag, method, params, step, sampler, guidance,
seed, metric, value``) and summarised as median [min, max] over seeds.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from equisynth.evaluation.quality.fidelity import c2st_auc

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "patient_treatment"
TARGET, SENSITIVE, STARVED = "SOURCE", "SEX", "F"
METHODS = ("real", "random", "smote", "mcrage", "mcrage-smote-first")
COLUMNS = ["tag", "method", "params", "step", "sampler", "guidance", "seed", "metric", "value"]


def load() -> pd.DataFrame:
    path = DATA / "patient_treatment.csv"
    if not path.exists():
        raise SystemExit(f"dataset not found at {path} (see the README's dataset table)")
    return pd.read_csv(path)


def starve(df: pd.DataFrame, seed: int, test_size: float, keep_frac: float):
    """(starved training table, full female training rows, held-back female test rows)."""
    strata = df[TARGET] + "|" + df[SENSITIVE]
    train, test = train_test_split(df, test_size=test_size, stratify=strata, random_state=seed)
    female = train[train[SENSITIVE] == STARVED]
    kept = female.groupby(TARGET, group_keys=False).sample(frac=keep_frac, random_state=seed)
    starved = pd.concat([train[train[SENSITIVE] != STARVED], kept]).sort_index()
    held = test[test[SENSITIVE] == STARVED]
    return starved.reset_index(drop=True), female, held.reset_index(drop=True)


def matched(rows: pd.DataFrame, held: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Subsample ``rows`` to the per-outcome counts of ``held`` (or as many as exist)."""
    parts = []
    for level, n in held[TARGET].value_counts().items():
        pool = rows[rows[TARGET] == level]
        take = rng.permutation(len(pool))[: min(int(n), len(pool))]
        parts.append(pool.iloc[take])
    return pd.concat(parts, ignore_index=True)


def score(held: pd.DataFrame, synth: pd.DataFrame, seed: int) -> dict[str, float]:
    """C2ST AUC of held-back real vs synthetic starved-group rows (SEX dropped)."""
    rng = np.random.default_rng(seed)
    synth = matched(synth, held, rng)
    real = held if len(synth) == len(held) else matched(held, synth, rng)
    cols = [c for c in held.columns if c != SENSITIVE]
    res = c2st_auc(real[cols], synth[cols], classifier="hgb", cv=5, random_state=seed)
    return {"c2st_auc": res.auc, "c2st_fold_sd": res.auc_sd, "n_per_class": res.n_per_class}


def _rows(tag, method, params, step, sampler, guidance, seed, metrics):
    return [
        [tag, method, params, step, sampler, guidance, seed, k, float(v)]
        for k, v in metrics.items()
    ]


def run_baselines(methods, seed, starved, female, held, tag):
    from equisynth.resampling import StrataOversampler

    out = []
    if "real" in methods:
        out += _rows(tag, "real", "", "", "", "", seed, score(held, female, seed))
    for method in ("random", "smote"):
        if method not in methods:
            continue
        X, y = starved.drop(columns=TARGET), starved[TARGET]
        t0 = time.perf_counter()
        sampler = StrataOversampler(
            sensitive_features=[SENSITIVE], method=method, random_state=seed
        )
        X_res, y_res = sampler.fit_resample(X, y)
        elapsed = time.perf_counter() - t0
        synth = X_res[sampler.synthetic_mask_].assign(**{TARGET: y_res[sampler.synthetic_mask_]})
        synth = synth[synth[SENSITIVE] == STARVED]
        metrics = score(held, synth, seed) | {"time_s": elapsed}
        out += _rows(tag, method, "", "", "", "", seed, metrics)
    return out


def _parse_sampler(spec: str, defaults: dict) -> tuple[str, int, float]:
    """``ddpm`` (full ancestral) or ``ddim[:STEPS[:ETA]]``."""
    name, *rest = spec.split(":")
    steps = int(rest[0]) if rest else defaults["sample_steps"]
    eta = float(rest[1]) if len(rest) > 1 else defaults["eta"]
    return name, steps, eta


def run_mcrage(seed, starved, held, params, *, smote_first, checkpoints, guidance, samplers, tag):
    """Fit the generator once and score every (checkpoint, sampler, guidance) combination."""
    from equisynth.generators.tabular import TabularDiffusionGenerator
    from equisynth.resampling import MCRAGE

    method = "mcrage-smote-first" if smote_first else "mcrage"
    label = json.dumps(params, sort_keys=True)
    conditions = held[[TARGET, SENSITIVE]].reset_index(drop=True)
    out: list = []
    gen = TabularDiffusionGenerator(**params)
    n_iter = gen.get_params()["n_iter"]
    steps = sorted({int(s) for s in (checkpoints or [n_iter]) if int(s) <= n_iter} | {n_iter})

    def evaluate(step, fitted):
        for spec in samplers:
            old = fitted.get_params()
            name, n_steps, eta = _parse_sampler(spec, old)
            fitted.set_params(sampler=name, sample_steps=n_steps, eta=eta)
            for w in guidance:
                t0 = time.perf_counter()
                synth = fitted.sample(conditions, random_state=seed + 1000, guidance_scale=w)
                elapsed = time.perf_counter() - t0
                metrics = score(held, synth, seed) | {"sample_time_s": elapsed}
                sname = name if name == "ddpm" else f"{name}:{n_steps}:{eta:g}"
                out.extend(_rows(tag, method, label, step, sname, w, seed, metrics))
            fitted.set_params(
                sampler=old["sampler"], sample_steps=old["sample_steps"], eta=old["eta"]
            )
        logging.info("seed %d step %d scored", seed, step)

    t0 = time.perf_counter()
    if smote_first:  # through MCRAGE (it builds the SMOTE-augmented training table)
        sampler = MCRAGE(
            sensitive_features=[SENSITIVE],
            generator=gen.set_params(random_state=seed),
            smote_first=True,
            random_state=seed,
        )
        sampler.fit_resample(starved.drop(columns=TARGET), starved[TARGET])
        fit_time = time.perf_counter() - t0
        evaluate(n_iter, sampler.generator_)
    else:
        # the same fit that MCRAGE does (features + target, conditioned on target x sensitive),
        # with a callback that scores intermediate EMA weights
        gen.set_params(random_state=seed)
        every = int(np.gcd.reduce(steps))
        wanted = set(steps)
        gen.fit(
            starved.drop(columns=TARGET).assign(**{TARGET: starved[TARGET]}),
            condition_on=[TARGET, SENSITIVE],
            callback=lambda step, g: evaluate(step, g) if step in wanted else None,
            eval_every=every,
        )
        fit_time = time.perf_counter() - t0  # includes the scoring time of the checkpoints
    out.extend(_rows(tag, method, label, n_iter, "", "", seed, {"fit_time_s": fit_time}))
    return out


def summarise(table: pd.DataFrame) -> str:
    """Markdown table: median [min, max] of the C2ST AUC over seeds per configuration."""
    t = table[table["metric"] == "c2st_auc"].copy()
    keys = ["tag", "method", "params", "step", "sampler", "guidance"]
    t[keys] = t[keys].astype(str).replace("nan", "")
    g = t.groupby(keys, sort=False)["value"]
    agg = pd.DataFrame(
        {
            "seeds": g.size(),
            "median": g.median(),
            "min": g.min(),
            "max": g.max(),
            "mean": g.mean(),
            "sd": g.std(),
        }
    ).reset_index()
    lines = [
        "| tag | method | params | step | sampler | w | seeds | C2ST AUC median [min, max] | mean +- SD |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in agg.itertuples(index=False):
        lines.append(
            f"| {r.tag} | {r.method} | {r.params or '-'} | {r.step or '-'} | {r.sampler or '-'} "
            f"| {r.guidance or '-'} | {r.seeds} | {r.median:.3f} [{r.min:.3f}, {r.max:.3f}] "
            f"| {r.mean:.3f} +- {0.0 if np.isnan(r.sd) else r.sd:.3f} |"
        )
    return "\n".join(lines)


def _parse_set(items: list[str]) -> dict:
    params = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value
        if isinstance(parsed, tuple | list):
            parsed = tuple(parsed)
        params[key] = parsed
    return params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--set", nargs="*", default=[], help="generator parameter KEY=VALUE")
    ap.add_argument("--checkpoints", type=int, nargs="*", default=None)
    ap.add_argument("--guidance", type=float, nargs="+", default=[None])
    ap.add_argument("--samplers", nargs="+", default=None, help="ddim[:STEPS[:ETA]] or ddpm")
    ap.add_argument("--test-size", type=float, default=0.3)
    ap.add_argument("--keep-frac", type=float, default=0.1)
    ap.add_argument("--tag", default="")
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument("--out", default=None, help="CSV to append the tidy results to")
    ap.add_argument("--summary", default=None, help="only print the summary of this CSV")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if a.summary:
        print(summarise(pd.read_csv(a.summary, keep_default_na=False)))
        return
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    warnings.filterwarnings("ignore", category=UserWarning)
    params = _parse_set(a.set)
    from equisynth.generators.tabular import TabularDiffusionGenerator

    defaults = TabularDiffusionGenerator().get_params()
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise SystemExit(f"unknown generator parameter(s) {unknown}")
    current = defaults | params
    samplers = a.samplers or [
        "ddpm"
        if current["sampler"] == "ddpm"
        else f"ddim:{current['sample_steps']}:{current['eta']}"
    ]
    guidance = [
        params.get("guidance_scale", defaults["guidance_scale"]) if w is None else w
        for w in a.guidance
    ]
    df = load()
    rows: list = []
    for seed in a.seeds:
        starved, female, held = starve(df, seed, a.test_size, a.keep_frac)
        logging.info(
            "seed %d: starved train %d rows (%d F), held-back F %d rows",
            seed,
            len(starved),
            int((starved[SENSITIVE] == STARVED).sum()),
            len(held),
        )
        new = run_baselines(a.methods, seed, starved, female, held, a.tag)
        for method in ("mcrage", "mcrage-smote-first"):
            if method in a.methods:
                new += run_mcrage(
                    seed,
                    starved,
                    held,
                    params,
                    smote_first=method == "mcrage-smote-first",
                    checkpoints=a.checkpoints if method == "mcrage" else None,
                    guidance=guidance,
                    samplers=samplers,
                    tag=a.tag,
                )
        rows += new
        if a.out:
            frame = pd.DataFrame(new, columns=COLUMNS)
            exists = os.path.exists(a.out)
            frame.to_csv(a.out, mode="a", header=not exists, index=False)
    print(summarise(pd.DataFrame(rows, columns=COLUMNS)))


if __name__ == "__main__":
    main()
