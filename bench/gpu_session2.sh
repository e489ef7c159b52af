#!/usr/bin/env bash
# One device call for the engine issue's H100 measures: 64 concurrent requests versus one at a time on the
# full-size Paraformer (bf16), the 2-hour recording (peak GPU memory, time, no growth over repeated passes),
# and fp32 vs bf16 agreement on the bundled (trained) model.
# Carry: .dev/gpu/bench/base .dev/gpu/bench/whl-lingting. Usage: BENCH_COMMIT=<sha> bench/gpu_session2.sh
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
export TMPDIR=${TMPDIR:-/var/tmp} PYTHONUNBUFFERED=1
OUT=${OUT:-$ROOT/bench-out/session2}
mkdir -p "$OUT"
t0=$(date +%s)
step() { echo "=== [$(( $(date +%s) - t0 )) s] $*"; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$TMPDIR/site" \
  .dev/gpu/bench/whl-lingting/*.whl || exit 1
export PYTHONPATH="$ROOT:$TMPDIR/site:$ROOT/.dev/gpu/bench/base"
BASE=.dev/gpu/bench/base
MODEL=$TMPDIR/lingting-bench/paraformer-large
CORPUS=$TMPDIR/lingting-bench/corpus-u64
step "model and corpus"
[ -f "$MODEL/model.pt" ] || timeout 120 python3 -m bench.build_large paraformer "$BASE/models/paraformer" "$MODEL" \
  --device cuda --calibrate-wav "$BASE/audio/en_16k.wav" --calibrate-wav "$BASE/audio/zh_16k.wav"
[ -d "$CORPUS" ] || timeout 120 python3 -m bench.corpus "$BASE/audio" "$CORPUS" --utterances 64 --long 0 --formats wav --workers 8
step "1. 64 concurrent vs one at a time (bf16)"
timeout 90 python3 -m bench.batch_identity --model-dir "$MODEL" --corpus "$CORPUS" --device cuda --dtype bf16 \
  --json "$OUT/batch_identity.json"
step "2. 2-hour recording, repeated (FSMN-VAD)"
timeout ${MEM_BOX:-170} python3 -m bench.engine_bench --model-dir "$MODEL" --corpus "$CORPUS" --device cuda --dtype bf16 \
  --modes memory --memory-hours 2 --memory-duration-s ${MEM_S:-120} --source "$BASE/audio" --vad fsmn \
  --vad-model-dir "$BASE/models/fsmn_vad" --json "$OUT/memory.json" 2>&1 | tail -15
step "3. fp32 vs bf16 on the bundled model"
timeout 60 python3 -m bench.precision_check --model-dir asr_engine/bundled/lingting-mini \
  --audio-dir asr_engine/bundled/lingting-mini/samples --utterances 64 --json "$OUT/precision_bundled.json"
step "done"
ls -la "$OUT"
