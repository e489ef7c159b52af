#!/usr/bin/env bash
# One device call (~6 minutes on an H100) that re-measures the serving path after a performance change:
#   1. engine ceiling (features + decode_batch, batch 1/32/256) and engine idle latency     -> engine.json
#   2. cuDNN on vs off: idle latency on new and seen lengths, and a batch of 64             -> shape_ab.json
#   3. gRPC unary WAV through the real server: idle, c=64, c=256                              -> grpc.json
#   4. the server under c=256 sampled by py-spy (when its wheel was carried and ptrace works) -> server-pyspy.txt
# Carry: .dev/gpu/bench/base .dev/gpu/bench/whl-lingting
# Usage on the device: BENCH_COMMIT=<sha> bench/gpu_perf.sh        (writes at most 8 files to $OUT)
# No `set -e`: each step has its own time box and a failed step must not hide the others' results.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
export TMPDIR=${TMPDIR:-/var/tmp} PYTHONUNBUFFERED=1
OUT=${OUT:-$ROOT/bench-out/perf}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log-perf.txt") 2>&1
t0=$(date +%s)
step() { echo "=== [$(( $(date +%s) - t0 )) s] $*"; }
PY=python3
[ -x .venv/bin/python ] && PY=$ROOT/.venv/bin/python  # a dry run here
DEVICE=${BENCH_DEVICE:-cuda} DTYPE=${BENCH_DTYPE:-bf16}
WORK=${BENCH_WORK:-$TMPDIR/lingting-bench}
small=(); [ "${BENCH_SMALL:-0}" = 1 ] && small=(--small)  # dry runs on a CPU: a 4-block model
MODEL=$WORK/paraformer-large$([ "${BENCH_SMALL:-0}" = 1 ] && echo -small || true)
ASSETS=.dev/gpu/bench
AUDIO=$ASSETS/base/audio
UTTS=${BENCH_UTTS:-160}
CORPUS=$WORK/corpus-u$UTTS-l0x10-wav
DURATION=${BENCH_DURATION_S:-8}
export BENCH_COMMIT=${BENCH_COMMIT:-unknown}

step "wheels (commit $BENCH_COMMIT)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
if [ -z "${BENCH_NO_WHEELS:-}" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$TMPDIR/site" \
    "$ASSETS"/whl-lingting/*.whl || { echo "wheel install failed"; exit 1; }
fi
export PYTHONPATH="$ROOT:$TMPDIR/site:$ROOT/$ASSETS/base"
export PATH="$TMPDIR/site/bin:$PATH"
mkdir -p "$WORK"

step "full-size Paraformer-large (random weights) and a WAV corpus of $UTTS utterances"
if [ ! -f "$MODEL/.done" ]; then
  timeout 120 "$PY" -m bench.build_large paraformer "$ASSETS/base/models/paraformer" "$MODEL" "${small[@]}" --device "$DEVICE" \
    --calibrate-wav "$AUDIO/en_16k.wav" --calibrate-wav "$AUDIO/zh_16k.wav" --calibrate-wav "$AUDIO/en2_16k.wav" \
    && touch "$MODEL/.done"
fi
if [ ! -f "$CORPUS/corpus.json" ]; then
  timeout 120 "$PY" -m bench.corpus "$AUDIO" "$CORPUS" --utterances "$UTTS" --long 0 --formats wav --workers 8
fi
[ -f "$MODEL/.done" ] && [ -f "$CORPUS/corpus.json" ] || { echo "no model or corpus; stopping"; exit 1; }

step "1. engine ceiling and idle latency"
timeout ${ENGINE_BOX:-110} "$PY" -m bench.engine_bench --model-dir "$MODEL" --corpus "$CORPUS" --device "$DEVICE" \
  --dtype "$DTYPE" --modes model,latency --batch-sizes 1,32,256 --model-min-time-s 2 --latency-repeats 50 \
  --format wav --json "$OUT/engine.json" 2>&1 | tail -25

step "2. cuDNN on vs off (new input lengths)"
timeout ${AB_BOX:-90} "$PY" -m bench.shape_ab --model-dir "$MODEL" --corpus "$CORPUS" --device "$DEVICE" --dtype "$DTYPE" \
  --files 25 --batch 64 --json "$OUT/shape_ab.json" 2>&1 | grep -v '^ ' | tail -8

step "3. gRPC unary WAV: idle, c=64, c=256"
timeout ${GRPC_BOX:-150} "$PY" -m bench.loadgen --serve --model-dir "$MODEL" --device "$DEVICE" --dtype "$DTYPE" \
  --corpus "$CORPUS" --mode unary --format wav --concurrency 64,256 --duration-s "$DURATION" --idle-requests 50 \
  --server-log "$OUT/server.log" --json "$OUT/grpc.json" 2>&1 | tail -20

step "4. the server at c=256 under py-spy"
spy=()
command -v py-spy >/dev/null && spy=(--py-spy "$OUT/server-pyspy.txt")
timeout ${PROFILE_BOX:-90} "$PY" -m bench.cpu_profile --model-dir "$MODEL" --corpus "$CORPUS" --device "$DEVICE" \
  --dtype "$DTYPE" --concurrency 256 --duration-s "$DURATION" "${spy[@]}" --json "$OUT/profile_level.json" 2>&1 | tail -6
if [ -s "$OUT/server-pyspy.txt" ]; then  # keep the raw stacks small: the 400 heaviest
  awk '{print $NF "\t" $0}' "$OUT/server-pyspy.txt" | sort -t"$(printf '\t')" -k1,1nr | head -400 | cut -f2- \
    > "$OUT/server-pyspy.top" && mv "$OUT/server-pyspy.top" "$OUT/server-pyspy.txt"
fi
step "done"
ls -la "$OUT"
