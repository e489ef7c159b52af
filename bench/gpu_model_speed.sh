#!/usr/bin/env bash
# One device call (~4 minutes on an H100): the model path eager vs CUDA graphs (issue 7).
#   0. wheels, full-size Paraformer-large (random weights, build_large) and a 160-utterance WAV corpus (cached)
#   1. the GPU-marked tests of the graphs and the models (when .dev/gpu/shared was carried)  -> gpu_tests.txt
#   2. kernel A/Bs at batch 1/32/256: FSMN conv (padded copy vs channels-last), attention per SDPA backend
#                                                                                               -> kernels.json
#   3. torch.profiler tables, eager and graphs, batch 1 and 256 (7.7 s utterances)  -> profile-*.txt + json
#   4. model-only RTFx (batch 1/8/16/32/256), idle latency (one file, 5-10 s files), token identity
#      of graph replays vs eager on 64 utterances                                             -> model_speed.json
# Carry: .dev/gpu/bench/base .dev/gpu/bench/whl-lingting (+ .dev/gpu/shared for step 1: a copy of ../shared/parity
#        under .dev/gpu/shared/parity). Prepare here with bench/stage_assets.sh.
# Usage on the device: BENCH_COMMIT=<sha> bench/gpu_model_speed.sh      (writes text/JSON only to $OUT)
# No `set -e`: each step has its own time box, and a failing step must not hide the others' results.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
export TMPDIR=${TMPDIR:-/var/tmp} PYTHONUNBUFFERED=1
OUT=${OUT:-$ROOT/bench-out/model-speed}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log-model-speed.txt") 2>&1
t0=$(date +%s)
step() { echo "=== [$(( $(date +%s) - t0 )) s] $*"; }
PY=python3
[ -x .venv/bin/python ] && PY=$ROOT/.venv/bin/python  # a dry run here
DTYPE=${BENCH_DTYPE:-bf16}
WORK=${BENCH_WORK:-$TMPDIR/lingting-bench}
ASSETS=.dev/gpu/bench
AUDIO=$ASSETS/base/audio
MODEL=$WORK/paraformer-large
CORPUS=$WORK/corpus-u160-l0x10-wav
export BENCH_COMMIT=${BENCH_COMMIT:-unknown}

step "0. setup (commit $BENCH_COMMIT)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())'
if [ -z "${BENCH_NO_WHEELS:-}" ] && [ -d "$ASSETS/whl-lingting" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$TMPDIR/site" \
    "$ASSETS"/whl-lingting/*.whl || echo "wheel install failed (continuing)"
fi
export PYTHONPATH="$ROOT:$TMPDIR/site:$ROOT/$ASSETS/base"
mkdir -p "$WORK"
if [ ! -f "$MODEL/.done" ]; then
  timeout 150 "$PY" -m bench.build_large paraformer "$ASSETS/base/models/paraformer" "$MODEL" --device cuda \
    --calibrate-wav "$AUDIO/en_16k.wav" --calibrate-wav "$AUDIO/zh_16k.wav" --calibrate-wav "$AUDIO/en2_16k.wav" \
    2>&1 | tail -3 && [ -f "$MODEL/model.pt" ] && touch "$MODEL/.done"
fi
if [ ! -f "$CORPUS/corpus.json" ]; then
  timeout 120 "$PY" -m bench.corpus "$AUDIO" "$CORPUS" --utterances 160 --long 0 --formats wav --workers 8 2>&1 | tail -2
fi
have_model=0; [ -f "$MODEL/.done" ] && [ -f "$CORPUS/corpus.json" ] && have_model=1
echo "model+corpus ready: $have_model"

step "1. GPU tests (graphs, models)"
if [ -d .dev/gpu/shared/parity ]; then
  LINGTING_SHARED_DIR=$ROOT/.dev/gpu/shared timeout ${TESTS_BOX:-100} "$PY" -m pytest -q -m gpu -p no:cacheprovider \
    tests/engine/test_graphs.py tests/models 2>&1 | tail -25 | tee "$OUT/gpu_tests.txt"
else
  echo "skipped: .dev/gpu/shared/parity was not carried" | tee "$OUT/gpu_tests.txt"
fi

step "2. kernel A/Bs: FSMN convolution (padded copy vs channels-last), attention per SDPA backend"
timeout ${KERNELS_BOX:-45} "$PY" -m bench.model_profile --device cuda --dtype "$DTYPE" --reports fsmn,attention \
  --batches 1,32,256 --frames 128 --repeats 50 --out "$OUT/kernels" 2>&1 | grep -E "fsmn:|attention:|Error|error" | cut -c1-500
[ -f "$OUT/kernels/model_profile-cuda.json" ] && mv "$OUT/kernels/model_profile-cuda.json" "$OUT/kernels.json" && rmdir "$OUT/kernels"

step "3. profiler tables, eager and graphs, batch 1 and 256"
timeout ${PROFILE_BOX:-70} "$PY" -m bench.model_profile --device cuda --dtype "$DTYPE" --reports time,profile --graphs \
  --batches 1,256 --frames 128 --repeats 20 --top 25 --out "$OUT/profile" 2>&1 | grep -E "time:|Error|error" | cut -c1-300

step "4. model RTFx, idle latency, token identity: eager vs graphs"
if [ "$have_model" = 1 ]; then
  timeout ${SPEED_BOX:-150} "$PY" -m bench.model_speed --model-dir "$MODEL" --corpus "$CORPUS" --dtype "$DTYPE" \
    --batch-sizes 1,8,16,32,256 --min-time-s 1.5 --latency-repeats 50 --identity-utts 64 \
    --json "$OUT/model_speed.json" 2>&1 | grep -E "INFO __main__|Error|error" | cut -c1-300
else
  echo "skipped: no model or corpus"
fi
step "done"
ls -la "$OUT" "$OUT/profile" 2>/dev/null
