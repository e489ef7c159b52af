#!/usr/bin/env bash
# Session 2's closing device call (~7 minutes on an H100): everything the issue-7 figures need after the
# model-path, CUDA-graph, multi-process and device-worker changes, in one call.
#   gpu_tests.txt        pytest -m gpu: graphs, device workers, model parity on CUDA
#   model_speed.json     model-only RTFx eager vs CUDA graphs (batch 1/16/32/256), engine idle latency, identity
#   batch_identity.json  64 requests at once vs one at a time through Engine.transcribe (defaults: graphs on)
#   grpc-dw1.json, grpc-dw2.json   12 front-ends, c=256, device_workers 1 and 2
#   grpc-idle.json       the better of the two: idle (c=1) server latency, then an open loop at half of peak
#   log-session.txt
# Carry: .dev/gpu/bench/base .dev/gpu/bench/whl-lingting .dev/gpu/shared (paraformer + sensevoice parity only)
# No `set -e`: every step has its own time box.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
export TMPDIR=${TMPDIR:-/var/tmp} PYTHONUNBUFFERED=1
OUT=${OUT:-$ROOT/bench-out/session}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log-session.txt") 2>&1
t0=$(date +%s)
step() { echo "=== [$(($(date +%s) - t0)) s] $*"; }
PY=python3
ASSETS=.dev/gpu/bench
AUDIO=$ASSETS/base/audio
WORK=$TMPDIR/lingting-bench
MODEL=$WORK/paraformer-large
CORPUS=$WORK/corpus-u160-l0x10-wav
export BENCH_COMMIT=${BENCH_COMMIT:-unknown}

step "wheels (commit $BENCH_COMMIT)"
timeout 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "$TMPDIR/site" "$ASSETS"/whl-lingting/*.whl || echo "wheel install failed"
export PYTHONPATH="$ROOT:$TMPDIR/site:$ROOT/$ASSETS/base" PATH="$TMPDIR/site/bin:$PATH"
mkdir -p "$WORK"

step "model and corpus"
if [ ! -f "$MODEL/.done" ]; then
  timeout 150 "$PY" -m bench.build_large paraformer "$ASSETS/base/models/paraformer" "$MODEL" --device cuda \
    --calibrate-wav "$AUDIO/en_16k.wav" --calibrate-wav "$AUDIO/zh_16k.wav" --calibrate-wav "$AUDIO/en2_16k.wav" \
    2>&1 | tail -1 && touch "$MODEL/.done"
fi
[ -f "$CORPUS/corpus.json" ] || timeout 120 "$PY" -m bench.corpus "$AUDIO" "$CORPUS" --utterances 160 --long 0 \
  --formats wav --workers 8 | tail -1

step "GPU tests"
LINGTING_SHARED_DIR=$ROOT/.dev/gpu/shared timeout 150 "$PY" -m pytest -q -m gpu -p no:cacheprovider \
  tests/engine/test_graphs.py tests/engine/test_device_workers.py tests/engine/test_features.py \
  tests/models/test_paraformer.py tests/models/test_sensevoice.py tests/models/test_cif_static.py \
  >"$OUT/gpu_tests.txt" 2>&1
grep -E "passed|failed|Error" "$OUT/gpu_tests.txt" | tail -6

step "model speed: eager vs graphs"
timeout 150 "$PY" -m bench.model_speed --model-dir "$MODEL" --corpus "$CORPUS" --batch-sizes 1,16,32,256 \
  --min-time-s 1.5 --latency-repeats 40 --identity-utts 64 --json "$OUT/model_speed.json" 2>&1 | grep -E "rtfx|identity|done" | cut -c1-220

step "batching invariance through Engine.transcribe (default settings)"
timeout 90 "$PY" -m bench.batch_identity --model-dir "$MODEL" --corpus "$CORPUS" --device cuda --dtype bf16 \
  --json "$OUT/batch_identity.json" 2>&1 | tail -2

serve() {  # name dw concurrency extra...
  local name=$1 dw=$2 conc=$3
  shift 3
  local log=$WORK/server-$name.log
  timeout -k 15 110 "$PY" -m bench.loadgen --serve --frontends 12 --model-dir "$MODEL" --device cuda --dtype bf16 \
    --server-setting "device_workers=$dw" --corpus "$CORPUS" --mode unary --format wav \
    --concurrency "$conc" --warmup-s 3 --processes 4 --channels 64 --server-log "$log" --json "$OUT/$name.json" "$@" \
    2>&1 | grep -v "^{" | grep -E "realtime|half|error|Error" | tail -4
  # nothing of this level may outlive it (a leftover engine process would hold GPU memory)
  for pid in $(grep -ohE "(supervisor|engine) pid=[0-9]+|frontends pids=[0-9,]+" "$log" 2>/dev/null | grep -oE "[0-9]+" | sort -u); do
    kill -0 "$pid" 2>/dev/null && { echo "killing leftover server process $pid"; kill -9 "$pid"; }
  done
  sleep 1
}
step "gRPC, 12 front-ends, c=256, device_workers 1"
serve grpc-dw1 1 256 --duration-s 20
step "gRPC, 12 front-ends, c=256, device_workers 2"
serve grpc-dw2 2 256 --duration-s 20
best=$("$PY" - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
def rtfx(n):
    try:
        return json.loads((Path(sys.argv[1]) / f"grpc-dw{n}.json").read_text())["rows"][0]["rtfx"]
    except Exception:
        return 0.0
print(2 if rtfx(2) > rtfx(1) else 1)
PYEOF
)
step "gRPC idle latency and half of peak, device_workers $best"
serve grpc-idle "$best" 1,256 --duration-s 15 --half-peak
step "done"
ls -la "$OUT"
