#!/usr/bin/env bash
# One device call that gathers a session's GPU evidence when time is short (each step has its own time box):
#   1. the GPU-marked tests (FunASR parity on CUDA in fp32 with TF32 off, features, batching)
#   2. FunASR AutoModel vs Lingting through gRPC on the same full-size Paraformer, GPU and audio (run_all funasr)
#   3. fp32 vs bf16 token agreement on the full-size Paraformer-large
#   4. engine-only model ceiling and idle latency (run_all engine's first step)
# Carry: .dev/gpu/bench/base .dev/gpu/bench/whl-lingting .dev/gpu/bench/whl-funasr .dev/gpu/shared
# Usage on the device: BENCH_COMMIT=<sha> bench/gpu_session.sh
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
export TMPDIR=${TMPDIR:-/var/tmp} PYTHONUNBUFFERED=1
OUT=${OUT:-$ROOT/bench-out/session}
mkdir -p "$OUT"
t0=$(date +%s)
step() { echo "=== [$(( $(date +%s) - t0 )) s] $*"; }

step "wheels"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$TMPDIR/site" \
  $(ls .dev/gpu/bench/whl-lingting/*.whl .dev/gpu/bench/whl-funasr/*.whl | awk -F/ '!seen[$NF]++') || exit 1
export PYTHONPATH="$ROOT:$TMPDIR/site:$ROOT/.dev/gpu/bench/base"

step "1. GPU tests"
LINGTING_SHARED_DIR=$ROOT/.dev/gpu/shared timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider \
  tests/engine/test_features.py tests/models 2>&1 | tail -25 | tee "$OUT/gpu_tests.txt"

step "2. FunASR vs Lingting (gRPC)"
BENCH_NO_WHEELS=1 BENCH_FORMATS=wav BENCH_UTTS=${BENCH_UTTS:-160} BENCH_LONG=1 BENCH_LONG_MIN=10 \
  BENCH_DURATION_S=${BENCH_DURATION_S:-8} BENCH_PEER_CONCURRENCY=${BENCH_PEER_CONCURRENCY:-64,256} \
  OUT=$OUT timeout ${FUNASR_BOX:-300} bench/run_all.sh funasr > /dev/null 2>&1
tail -40 "$OUT/log-funasr.txt"

MODEL=$TMPDIR/lingting-bench/paraformer-large
step "3. fp32 vs bf16 on $MODEL"
timeout 90 python3 -m bench.precision_check --model-dir "$MODEL" --audio-dir .dev/gpu/bench/base/audio \
  --utterances 64 --json "$OUT/precision.json"

step "4. engine ceiling and idle latency"
CORPUS=$(ls -d "$TMPDIR"/lingting-bench/corpus-* 2>/dev/null | head -1)
timeout ${ENGINE_BOX:-120} python3 -m bench.engine_bench --model-dir "$MODEL" --corpus "$CORPUS" --device cuda \
  --dtype bf16 --modes model,latency --batch-sizes 1,32,128,256 --latency-repeats 50 --format wav \
  --json "$OUT/engine.json" 2>&1 | tail -30
step "done"
ls -la "$OUT"
