#!/usr/bin/env bash
# The whole benchmark suite, in stages that each fit one device call (< 9 minutes on an H100):
#
#   bench/run_all.sh engine   # model ceiling, engine concurrency sweep, idle latency, 2 h memory test, profile
#   bench/run_all.sh grpc     # real server + load generator: unary WAV/MP3, idle, half peak, upload and live streams
#   bench/run_all.sh funasr   # FunASR AutoModel (documented + fastest settings) and Lingting on the same files
#   bench/run_all.sh memory   # only the long-recording memory test (BENCH_MEM_S=450: the longest that fits one call)
#   bench/run_all.sh report RUN_DIR...   # here: bench/RESULTS.md and bench/plots/ from fetched result folders
#
# Results (JSON, at most 8 files per stage) go to $OUT (the device tool's folder) or $TMPDIR/lingting-bench-out/<stage>.
# Assets come from $BENCH_ASSETS (default .dev/gpu/bench, prepared by bench/stage_assets.sh and carried).
# Every knob is an environment variable (defaults in brackets):
#   BENCH_DEVICE [cuda]  BENCH_DTYPE [bf16]  BENCH_UTTS [200]  BENCH_LONG [1]  BENCH_LONG_MIN [10]
#   BENCH_DURATION_S [10] per load level   BENCH_CONCURRENCY [1,16,64,256]   BENCH_MEM_HOURS [2]
#   BENCH_MEM_S [90] memory-test duration  BENCH_SMALL [0] (1: a 4-block model, for dry runs on a CPU)
#   BENCH_WORK [$TMPDIR/lingting-bench] model + corpus, reused when present   BENCH_COMMIT (for the record)
#   BENCH_FAMILY [paraformer] or sensevoice   BENCH_MODEL_DIR (skip building: e.g. the bundled model's dir)
#   funasr stage, Lingting's side: BENCH_PEER_CONCURRENCY [64,256]  BENCH_PEER_FORMATS [wav] (mp3 needs PyAV)
#   BENCH_PEER_FRONTENDS [1]  BENCH_PEER_SETTINGS (comma list of server settings)  BENCH_PEER_WARMUP_S [3]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
stage=${1:-}
[ -n "$stage" ] || { sed -n '2,19p' "$0"; exit 2; }
shift || true

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=$ROOT/.venv/bin/python

case "$stage" in
  report) exec "$PY" -m bench.report "$@" ;;
  engine|grpc|funasr|memory|all) ;;
  *) echo "unknown stage $stage (engine | grpc | funasr | memory | all | report)" >&2; exit 2 ;;
esac

export TMPDIR=${TMPDIR:-/var/tmp}
export PYTHONUNBUFFERED=1
ASSETS=${BENCH_ASSETS:-.dev/gpu/bench}
OUT=${OUT:-$TMPDIR/lingting-bench-out/$stage}
WORK=${BENCH_WORK:-$TMPDIR/lingting-bench}
DEVICE=${BENCH_DEVICE:-cuda}
DTYPE=${BENCH_DTYPE:-bf16}
UTTS=${BENCH_UTTS:-200}
LONG=${BENCH_LONG:-1}
LONG_MIN=${BENCH_LONG_MIN:-10}
DURATION=${BENCH_DURATION_S:-10}
CONC=${BENCH_CONCURRENCY:-1,16,64,256}
MEM_HOURS=${BENCH_MEM_HOURS:-2}
MEM_S=${BENCH_MEM_S:-90}
mkdir -p "$OUT" "$WORK"
LOG=$OUT/log-$stage.txt
exec > >(tee -a "$LOG") 2>&1
t_start=$(date +%s)
step() { echo "=== [$(( $(date +%s) - t_start )) s] $*"; }

step "stage $stage on $(uname -n); device $DEVICE $DTYPE; out $OUT; work $WORK"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv
echo "cpus: $(nproc)"

# --- Python packages the image lacks: every carried wheel folder, each wheel once -----------------------
wheels=()
declare -A seen=()
for dir in "$ASSETS"/whl-*; do
  [ -d "$dir" ] || continue
  for whl in "$dir"/*.whl; do
    name=$(basename "$whl")
    [ -n "${seen[$name]:-}" ] && continue
    seen[$name]=1
    wheels+=("$whl")
  done
done
if [ ${#wheels[@]} -gt 0 ] && [ -z "${BENCH_NO_WHEELS:-}" ]; then
  step "installing ${#wheels[@]} wheels into $TMPDIR/site"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$TMPDIR/site" \
    "${wheels[@]}"
  export PYTHONPATH="$TMPDIR/site${PYTHONPATH:+:$PYTHONPATH}"
fi
# Our packages first; generated stubs from the carried assets when ./lingting was not generated here.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
[ -d "$ROOT/lingting" ] || export PYTHONPATH="$PYTHONPATH:$ROOT/$ASSETS/base"
export BENCH_COMMIT=${BENCH_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}

BASE=$ASSETS/base
[ -d "$BASE/models/paraformer" ] || BASE=${LINGTING_SHARED_DIR:-../shared}/parity  # a local dry run
model_src() { [ -d "$BASE/models/$1" ] && echo "$BASE/models/$1" || echo "$BASE/$1/model"; }
AUDIO=$BASE/audio
[ -d "$AUDIO" ] || AUDIO=$BASE/paraformer/audio
VAD_DIR=$(model_src fsmn_vad)
FAMILY=${BENCH_FAMILY:-paraformer}  # or sensevoice (SenseVoiceSmall size)
MODEL=${BENCH_MODEL_DIR:-$WORK/$FAMILY-large$([ "${BENCH_SMALL:-0}" = 1 ] && echo -small || true)}  # or a given dir
FORMATS=${BENCH_FORMATS:-wav,mp3}
CORPUS=$WORK/corpus-u$UTTS-l${LONG}x$LONG_MIN-${FORMATS//,/-}  # named by its knobs: reused only when they match

preflight() {  # fail in seconds, with a clear message, when a carried package is missing or too old
  local modules=$1
  "$PY" - "$modules" "$DEVICE" <<'PYEOF'
import importlib, sys
missing = []
for name in sys.argv[1].split(","):
    try:
        module = importlib.import_module(name)
        print(f"  {name} {getattr(module, '__version__', '')}".rstrip())
    except Exception as exc:  # noqa: BLE001 - any failure to import is the finding
        missing.append(f"{name}: {type(exc).__name__}: {exc}")
import torch
print(f"  torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
if sys.argv[2].startswith("cuda") and not torch.cuda.is_available():
    missing.append(f"device {sys.argv[2]}: CUDA is not available")
if missing:
    sys.exit("preflight failed (carry the wheel folders named in bench/README.md):\n  " + "\n  ".join(missing))
PYEOF
}

build_model() {
  if [ -n "${BENCH_MODEL_DIR:-}" ]; then step "model: $MODEL as given"; return; fi
  if [ -f "$MODEL/model.pt" ] && [ -f "$MODEL/.done" ]; then step "model: reusing $MODEL"; return; fi
  step "building full-size $FAMILY (random weights) in $MODEL"
  small=(); [ "${BENCH_SMALL:-0}" = 1 ] && small=(--small)
  "$PY" -m bench.build_large "$FAMILY" "$(model_src "$FAMILY")" "$MODEL" "${small[@]}" --device "$DEVICE" \
    --calibrate-wav "$AUDIO/en_16k.wav" --calibrate-wav "$AUDIO/zh_16k.wav" --calibrate-wav "$AUDIO/en2_16k.wav"
  touch "$MODEL/.done"
}

build_corpus() {
  if [ -f "$CORPUS/corpus.json" ]; then step "corpus: reusing $CORPUS"; return; fi
  step "generating corpus: $UTTS utterances (WAV + MP3), $LONG long recording(s) of $LONG_MIN min"
  "$PY" -m bench.corpus "$AUDIO" "$CORPUS" --utterances "$UTTS" --long "$LONG" --long-min "$LONG_MIN" \
    --long-max "$LONG_MIN" --formats "$FORMATS" --workers "$(( $(nproc) > 8 ? 8 : $(nproc) ))"
}

run_engine() {
  step "engine: model ceiling, concurrency sweep, idle latency"
  "$PY" -m bench.engine_bench --model-dir "$MODEL" --corpus "$CORPUS" --device "$DEVICE" --dtype "$DTYPE" \
    --modes model,engine,latency --concurrency "$CONC" --duration-s "$DURATION" --batch-sizes 1,8,32,128 \
    --format wav,samples --json "$OUT/engine.json"
}

run_memory() {
  step "memory: ${MEM_HOURS} h recording, repeated for ${MEM_S} s"
  "$PY" -m bench.engine_bench --model-dir "$MODEL" --corpus "$CORPUS" --device "$DEVICE" --dtype "$DTYPE" \
    --modes memory --memory-hours "$MEM_HOURS" --memory-duration-s "$MEM_S" --source "$AUDIO" \
    --vad fsmn --vad-model-dir "$VAD_DIR" --json "$OUT/memory.json"
}

run_profile() {  # last: a process that profiled CUDA is slower afterwards (its own process anyway)
  step "profile: top operators of the model path"
  "$PY" -m bench.engine_bench --model-dir "$MODEL" --corpus "$CORPUS" --device "$DEVICE" --dtype "$DTYPE" \
    --modes profile --batch-sizes 64 --json "$OUT/profile.json" | tail -45
}

run_grpc() {
  step "gRPC: unary WAV and MP3 (idle, sweep, half peak), upload and live streams"
  "$PY" -m bench.loadgen --serve --model-dir "$MODEL" --vad-model-dir "$VAD_DIR" --device "$DEVICE" \
    --dtype "$DTYPE" --corpus "$CORPUS" --mode unary,stream,realtime --format wav,mp3 --concurrency "$CONC" \
    --stream-concurrency "${BENCH_STREAM_CONCURRENCY:-64}" --realtime-concurrency "${BENCH_RT_CONCURRENCY:-64,256}" \
    --duration-s "$DURATION" --idle-requests 100 --half-peak --server-log "$OUT/server-grpc.log" --json "$OUT/grpc.json"
}

run_funasr() {
  step "FunASR AutoModel on the same model, GPU and audio"
  "$PY" -m bench.funasr_peer --model-dir "$MODEL" --vad-model-dir "$VAD_DIR" --corpus "$CORPUS" \
    --device "$([ "$DEVICE" = cuda ] && echo cuda:0 || echo "$DEVICE")" --json "$OUT/funasr.json"
  step "Lingting through gRPC on the same files, same machine"
  local settings=() s
  for s in ${BENCH_PEER_SETTINGS//,/ }; do settings+=(--server-setting "$s"); done
  "$PY" -m bench.loadgen --serve --model-dir "$MODEL" --vad-model-dir "$VAD_DIR" --device "$DEVICE" \
    --dtype "$DTYPE" --corpus "$CORPUS" --mode unary --format "${BENCH_PEER_FORMATS:-wav}" \
    --concurrency "${BENCH_PEER_CONCURRENCY:-64,256}" --frontends "${BENCH_PEER_FRONTENDS:-1}" "${settings[@]}" \
    --warmup-s "${BENCH_PEER_WARMUP_S:-3}" --duration-s "$DURATION" --idle-requests 50 \
    --server-log "$OUT/server-funasr.log" --json "$OUT/grpc_peer.json"
}

ENGINE_MODS=numpy,yaml,sentencepiece,soundfile,asr_engine.engine,bench.engine_bench
GRPC_MODS=$ENGINE_MODS,grpc,google.protobuf,google.rpc.status_pb2,grpc_health.v1.health,sqlalchemy,alembic
GRPC_MODS=$GRPC_MODS,lingting.asr.v1.recognition_service_pb2_grpc,service.server,bench.loadgen
case "$stage" in
  engine|memory) preflight "$ENGINE_MODS" ;;
  grpc) preflight "$GRPC_MODS,av" ;;
  funasr) preflight "$GRPC_MODS,funasr,funasr.models.paraformer.model" ;;
  all) preflight "$GRPC_MODS,av,funasr,funasr.models.paraformer.model" ;;
esac

case "$stage" in
  engine) build_model; build_corpus; run_engine; run_memory; run_profile ;;
  memory) build_model; build_corpus; run_memory ;;
  grpc) build_model; build_corpus; run_grpc ;;
  funasr) build_model; build_corpus; run_funasr ;;
  all) build_model; build_corpus; run_engine; run_grpc; run_funasr; run_memory; run_profile ;;
esac
step "done; results in $OUT"
ls -la "$OUT"
