#!/usr/bin/env bash
# One device call (~5 minutes on an H100): the batcher's budget (`max_batch_s`) against throughput at c=256,
# client p99 at half of that peak, and the engine process's GPU memory; 12 gRPC front-ends, Paraformer-large
# size (random weights, bf16), unary 16 kHz WAV. Writes grpc-b<S>.json per budget and log-budget.txt.
# Carry: .dev/gpu/bench/base .dev/gpu/bench/whl-lingting.   Knobs: BENCH_BUDGETS ["600 200 100"], BENCH_DURATION_S [20]
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
export TMPDIR=${TMPDIR:-/var/tmp} PYTHONUNBUFFERED=1
OUT=${OUT:-$ROOT/bench-out/budget}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log-budget.txt") 2>&1
t0=$(date +%s)
step() { echo "=== [$(($(date +%s) - t0)) s] $*"; }
ASSETS=.dev/gpu/bench
AUDIO=$ASSETS/base/audio
WORK=$TMPDIR/lingting-bench
MODEL=$WORK/paraformer-large
CORPUS=$WORK/corpus-u160-l0x10-wav
step "wheels, model, corpus (commit ${BENCH_COMMIT:-unknown})"
timeout 120 python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "$TMPDIR/site" "$ASSETS"/whl-lingting/*.whl || echo "wheel install failed"
export PYTHONPATH="$ROOT:$TMPDIR/site:$ROOT/$ASSETS/base" PATH="$TMPDIR/site/bin:$PATH"
mkdir -p "$WORK"
[ -f "$MODEL/.done" ] || { timeout 150 python3 -m bench.build_large paraformer "$ASSETS/base/models/paraformer" "$MODEL" \
  --device cuda --calibrate-wav "$AUDIO/en_16k.wav" --calibrate-wav "$AUDIO/zh_16k.wav" --calibrate-wav "$AUDIO/en2_16k.wav" \
  | tail -1 && touch "$MODEL/.done"; }
[ -f "$CORPUS/corpus.json" ] || timeout 120 python3 -m bench.corpus "$AUDIO" "$CORPUS" --utterances 160 --long 0 \
  --formats wav --workers 8 | tail -1
for budget in ${BENCH_BUDGETS:-600 200 100}; do
  step "max_batch_s=$budget: c=256, then an open loop at half of it"
  log=$WORK/server-b$budget.log
  timeout -k 15 130 python3 -m bench.loadgen --serve --frontends 12 --model-dir "$MODEL" --device cuda --dtype bf16 \
    --server-setting "max_batch_s=$budget" --corpus "$CORPUS" --mode unary --format wav --concurrency 256 \
    --duration-s "${BENCH_DURATION_S:-20}" --warmup-s 3 --processes 4 --channels 64 --half-peak --server-log "$log" \
    --json "$OUT/grpc-b$budget.json" 2>&1 | grep -E "realtime|half peak|rror" | tail -3
  for pid in $(grep -ohE "(supervisor|engine) pid=[0-9]+|frontends pids=[0-9,]+" "$log" 2>/dev/null | grep -oE "[0-9]+" | sort -u); do
    kill -0 "$pid" 2>/dev/null && { echo "killing leftover server process $pid"; kill -9 "$pid"; }
  done
done
step "done"
