#!/usr/bin/env bash
# Sweep of the generator's defaults on the quality yardstick (benchmarks/bench_quality.py).
# Every line trains one configuration per seed; checkpoints / samplers / guidance scales of the
# same training run are scored without retraining. Results are appended to $OUT (tidy CSV);
# print the table with: python benchmarks/bench_quality.py --summary $OUT
# Usage: OUT=bench-out/sweep.csv SEEDS="0 1 2" bash benchmarks/sweep_generator.sh [STAGE]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
OUT=${OUT:-bench-out/sweep.csv}
SEEDS=${SEEDS:-0 1 2}
STAGE=${1:-all}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$(dirname "$OUT")"
q() { $PY benchmarks/bench_quality.py --methods mcrage --seeds $SEEDS --out "$OUT" "$@"; }

if [[ $STAGE == all || $STAGE == sampling ]]; then
  # sampler x guidance scale on the training defaults
  q --tag sampling --checkpoints 1000 2000 3000 --guidance 0.5 1 1.5 2 3 \
    --samplers ddim:50:1 ddim:50:0 ddpm
fi
CK="--checkpoints 500 1000 2000"
if [[ $STAGE == all || $STAGE == training || $STAGE == training-a ]]; then
  # one knob at a time against the defaults, scored at several training lengths
  q --tag width --set hidden=128,128 n_iter=2000 $CK
  q --tag width --set hidden=256,256 n_iter=2000 $CK
  q --tag lr --set lr=1e-3 n_iter=2000 $CK
  q --tag regularise --set dropout=0.1 n_iter=2000 $CK
  q --tag regularise --set cond_drop_prob=0.2 n_iter=2000 $CK
fi
if [[ $STAGE == all || $STAGE == training || $STAGE == training-b ]]; then
  q --tag transform --set numeric_transform=standard n_iter=2000 $CK
  q --tag schedule --set schedule=linear n_iter=2000 $CK
  q --tag timesteps --set timesteps=100 n_iter=2000 $CK
  q --tag timesteps --set timesteps=paper n_iter=2000 $CK
  q --tag batch --set batch_size=256 n_iter=4000 --checkpoints 1000 2000 4000
  q --tag width --set hidden=512,512,512 n_iter=2000 $CK
fi
