"""Benchmark: one seed of the FairSynth experiment on Synthea (all four arms), target <= 10 min.

Runs ``FairSynthProtocol.run_seed`` with the settings of ``equisynth experiment fairsynth``
(task ``mortality_next_visit``, sensitive ``race``, 20 visits per patient, HALO generator and
GRU downstream model with their defaults, 3 feedback rounds) and reports the wall time of the
seed and of each arm, then times the generator alone on the same training split: training
throughput (patients x epochs per second) and sampling speed (patients per second).

``--quick`` uses tiny models (a smoke test of the script, not a measurement).

Usage::

    OMP_NUM_THREADS=2 python benchmarks/bench_fairsynth.py [--seed 0] [--threads N] \
        [--data ../shared/data/synthea_1k] [--n-sample 1000] [--quick] [--out bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data" / "synthea_1k"
QUICK_GENERATOR = {"n_layers": 1, "d_model": 16, "n_heads": 2, "n_code_layers": 1, "n_epochs": 1}
QUICK_DOWNSTREAM = {"d_model": 8, "n_epochs": 1}


def _task(data: Path):
    from equisynth.cli.experiment_fairsynth import DEFAULT_MAX_VISITS
    from equisynth.data.loaders import load_synthea
    from equisynth.data.tasks import make_task

    cohort = load_synthea(data)
    return make_task(
        cohort,
        "mortality_next_visit",
        demographics=["gender", "race", "ethnicity", "age_group"],
        max_visits=DEFAULT_MAX_VISITS,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-sample", type=int, default=1000, help="patients sampled for speed")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--quick", action="store_true", help="tiny models: a smoke test")
    parser.add_argument("--out", type=Path, default=None, help="write the numbers as JSON")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"data folder {args.data} not found; pass --data", file=sys.stderr)
        return 2
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from equisynth.cli.experiment_fairsynth import DEFAULT_MAX_VISITS
    from equisynth.evaluation.protocols.fairsynth import FairSynthProtocol
    from equisynth.generators.ehr import HALOGenerator
    from equisynth.resampling.ehr_baselines import stratified_split

    task = _task(args.data)
    gen_params = {"max_visits": DEFAULT_MAX_VISITS, **(QUICK_GENERATOR if args.quick else {})}
    protocol = FairSynthProtocol(
        task=task,
        sensitive=["race"],
        generator_params=gen_params,
        downstream_params=QUICK_DOWNSTREAM if args.quick else {},
        fairsynth_params={"n_rounds": 1} if args.quick else {},
    )
    start = time.perf_counter()
    seed = protocol.run_seed(args.seed)
    wall = time.perf_counter() - start
    print(f"one seed, all arms: {wall:.1f} s ({task.n_patients} patients)")
    for arm, seconds in seed.seconds.items():
        print(f"  {arm:<16} {seconds:7.1f} s")

    train_idx, _ = stratified_split(task, ["race"], protocol.test_size, random_state=args.seed)
    train = task.subset(train_idx)
    gen = HALOGenerator(**gen_params, random_state=args.seed)
    start = time.perf_counter()
    gen.fit(train)
    fit_s = time.perf_counter() - start
    throughput = train.n_patients * gen.n_epochs / fit_s
    conditions = train.demographics.sample(
        n=args.n_sample, replace=True, random_state=args.seed
    ).reset_index(drop=True)
    start = time.perf_counter()
    gen.sample(conditions=conditions, random_state=args.seed)
    sample_s = time.perf_counter() - start
    print(
        f"generator: fit {fit_s:.1f} s for {train.n_patients} patients x {gen.n_epochs} epochs "
        f"= {throughput:.0f} patients/s; sampling {args.n_sample} patients {sample_s:.1f} s "
        f"= {args.n_sample / sample_s:.0f} patients/s"
    )
    if args.out:
        record = {
            "benchmark": "fairsynth_one_seed",
            "quick": args.quick,
            "n_patients": task.n_patients,
            "seed_wall_seconds": wall,
            "arm_seconds": seed.seconds,
            "generator_fit_seconds": fit_s,
            "generator_epochs": gen.n_epochs,
            "generator_train_patients_per_second": throughput,
            "sample_patients": args.n_sample,
            "sample_seconds": sample_s,
            "sample_patients_per_second": args.n_sample / sample_s,
            "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
        }
        args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
