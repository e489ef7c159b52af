#!/usr/bin/env bash
# One device call (~7 minutes): what bounds gRPC throughput with 12 front-ends (issue 7). Paraformer-large size
# (random weights, bf16), unary 16 kHz WAV, c=256 closed loop. Writes under $OUT:
#   grpc-base.json              the defaults, with the engine process sampled by py-spy while under load:
#   engine-spy.txt              ... Python stacks of every engine thread, idle frames included (collapsed, top 300)
#   engine-spy-native.txt       ... the same with native frames (where the device thread waits inside CUDA/ATen)
#   grpc-<level>.json           the A/B levels of BENCH_LEVELS (each "name:setting=value,setting=value[:half]";
#                               ":half" adds an open-loop run at half of the level's peak: client p99 at half load)
#   gpu_tests.txt               pytest -m gpu on the graph and device-worker tests (BENCH_NO_TESTS=1 skips)
#   dmon.txt                    nvidia-smi dmon (SM and memory-controller use, 1 s) over the whole call
#   batching.txt                the engine's batching summary per level (items per batch, padding, busy share)
#   servers.log, log-diag.txt   the end of each server's log; this script's output
#   (all but log-diag.txt are packed into diag-results.tgz at the end: the device tool returns at most 8 files)
# Carry: .dev/gpu/bench/base .dev/gpu/bench/whl-lingting (bench/stage_assets.sh; the group includes py-spy)
#        .dev/gpu/shared (../shared/parity/paraformer only, for the GPU tests)
# Knobs: BENCH_DURATION_S [20] BENCH_WARMUP_S [12: lazy graph captures of new shapes happen in it] BENCH_LEVELS
#        BENCH_TESTS (test files for pytest -m gpu)  BENCH_MODEL_AB (batch sizes: model_speed with the fused FSMN
#        kernel and without -> model_speed-{fused,native}.json)  BENCH_WARM_LEVEL=1 (a throwaway level first)
#        BENCH_BASE_SETTINGS (settings of the base level)  BENCH_TESTS_TIMEOUT [240]
#        BENCH_IDLE=N (the base level first sends N sequential 5-10 s requests to the idle server: idle latency)
#        BENCH_MP3=1 (a 44.1 kHz MP3 corpus too; levels named mp3* send it; PyAV must be installed on the machine,
#        e.g. by an earlier call carrying .dev/gpu/bench/whl-mp3 into $TMPDIR/site: it does not fit one carry)
#        A level setting frontends=N runs the server with N front-end processes instead of 12 (MP3 decode is
#        CPU bound in them: mp3f15:frontends=15).
#        Level settings named PYTORCH_* go to the server's environment instead of its settings; write ':' in
#        their values as '@' (':' separates a level's fields): PYTORCH_CUDA_ALLOC_CONF=expandable_segments@True
#        BENCH_PEER=1 (then FunASR AutoModel, fastest and documented settings, on the same files -> funasr.json;
#        carry .dev/gpu/bench/whl-funasr too)
# Usage on the device: BENCH_COMMIT=<sha> bash bench/gpu_diag.sh   (timeout_s 590)
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
export TMPDIR=${TMPDIR:-/var/tmp} PYTHONUNBUFFERED=1
OUT=${OUT:-$ROOT/bench-out/diag}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log-diag.txt") 2>&1
t0=$(date +%s)
step() { echo "=== [$(($(date +%s) - t0)) s] $(date -u +%H:%M:%S) $*"; }
ASSETS=.dev/gpu/bench
AUDIO=$ASSETS/base/audio
WORK=$TMPDIR/lingting-bench
MODEL=${BENCH_MODEL:-$WORK/paraformer-large}
DEVICE=${BENCH_DEVICE:-cuda}
CORPUS=$WORK/corpus-u160-l0x10-wav
DURATION=${BENCH_DURATION_S:-20}
# name:settings[:half] (":half" adds an open-loop run at half of that level's peak)
LEVELS=${BENCH_LEVELS:-eager:cuda_graph_split=false:half g32:cuda_graph_max_batch=32 dw2:device_workers=2 b1500:max_batch_s=1500}
step "wheels, model, corpus (commit ${BENCH_COMMIT:-unknown})"
[ -n "${BENCH_NO_WHEELS:-}" ] || timeout 120 python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "$TMPDIR/site" "$ASSETS"/whl-lingting/*.whl || echo "wheel install failed"
export PYTHONPATH="$ROOT:$TMPDIR/site:$ROOT/$ASSETS/base" PATH="$TMPDIR/site/bin:$PATH"
mkdir -p "$WORK"
[ -n "${BENCH_MODEL:-}" ] || [ -f "$MODEL/.done" ] || { timeout 150 python3 -m bench.build_large paraformer "$ASSETS/base/models/paraformer" "$MODEL" \
  --device cuda --calibrate-wav "$AUDIO/en_16k.wav" --calibrate-wav "$AUDIO/zh_16k.wav" --calibrate-wav "$AUDIO/en2_16k.wav" \
  | tail -1 && touch "$MODEL/.done"; }
[ -f "$CORPUS/corpus.json" ] || timeout 120 python3 -m bench.corpus "$AUDIO" "$CORPUS" --utterances 160 --long 0 \
  --formats wav --workers 8 | tail -1
CORPUS_MP3=$WORK/corpus-u160-l0x10-mp3  # for levels named mp3*: 44.1 kHz MP3 (PyAV must be on the machine)
if [ -n "${BENCH_MP3:-}" ] && [ ! -f "$CORPUS_MP3/corpus.json" ]; then
  timeout 150 python3 -m bench.corpus "$AUDIO" "$CORPUS_MP3" --utterances 160 --long 0 --formats mp3 --workers 8 | tail -1
fi
command -v nvidia-smi >/dev/null && nvidia-smi dmon -s um -d 1 -o T > "$OUT/dmon.txt" 2>&1 &
DMON=$!

# collapsed stacks, heaviest 300 kept (the raw file of a 16-thread process is tens of MB)
top_stacks() { awk '{print $NF "\t" $0}' "$1" | sort -t"$(printf '\t')" -k1,1nr | head -300 | cut -f2- > "$1.top" && mv "$1.top" "$1"; }

# py-spy's default mode pauses the process for every sample. In session 4 the sampled base level read 20-25 %
# below unsampled levels of the same code in the same call (8,938-9,167x vs 11,044-12,053x), even on a warm
# machine, so the sampling, not "the first level after a start", is the likely cause of the slow first levels
# of earlier notes. --nonblocking reads without pausing (stacks may tear; fine for shares of time).
spy_engine() { # $1 = server log; samples the engine process once the load is on
  local log=$1 pid="" i
  for i in $(seq 1 150); do
    pid=$(grep -ohE "engine pid=[0-9]+" "$log" 2>/dev/null | grep -oE "[0-9]+" | head -1)
    [ -n "$pid" ] && grep -q "engine process ready" "$log" 2>/dev/null && break
    sleep 1
  done
  [ -z "$pid" ] && { echo "spy: no engine pid"; return; }
  sleep $((${BENCH_WARMUP_S:-12} + 6)) # start-up of the front-ends + the client's warm-up
  echo "spy: engine pid $pid from $(date -u +%H:%M:%S)"
  timeout 20 py-spy record -p "$pid" -r 150 -d 9 --threads --idle --nonblocking -f raw -o "$OUT/engine-spy.txt" >/dev/null 2>&1 \
    || echo "spy: py-spy (python) failed"
  timeout 20 py-spy record -p "$pid" -r 100 -d 7 --threads --idle --native --nonblocking -f raw -o "$OUT/engine-spy-native.txt" \
    >/dev/null 2>&1 || echo "spy: py-spy (native) failed"
  for f in "$OUT/engine-spy.txt" "$OUT/engine-spy-native.txt"; do [ -s "$f" ] && top_stacks "$f"; done
}

run_level() { # $1 = name, $2 = comma list of settings (may be empty), $3 = "spy" and/or "half"
  local name=$1 settings=$2 log=$WORK/server-$1.log args=(--server-setting log_level=INFO) half=() s env=() frontends=12
  local format=wav corpus=$CORPUS idle=()
  for s in ${settings//,/ }; do
    case "$s" in
      PYTORCH_*) env+=("${s//@/:}") ;; # the allocator's environment (read at CUDA start): the server inherits it
      frontends=*) frontends=${s#frontends=} ;; # the server's front-end processes (12 unless a level says)
      *) args+=(--server-setting "$s") ;;
    esac
  done
  case "${3:-}" in *half*) half=(--half-peak) ;; esac
  case "${3:-}" in *idle*) idle=(--idle-requests "${BENCH_IDLE:-50}") ;; esac
  case "$name" in mp3*) format=mp3 corpus=$CORPUS_MP3 ;; esac
  step "level $name (${settings:-defaults}): c=256 for ${DURATION}s${half:+, then half of peak}"
  rm -f "$log"
  local spy=""
  case "${3:-}" in *spy*) spy_engine "$log" & spy=$! ;; esac
  env "${env[@]}" timeout -k 15 150 python3 -m bench.loadgen --serve --frontends "$frontends" --model-dir "$MODEL" --device "$DEVICE" \
    --dtype "${BENCH_DTYPE:-bf16}" "${args[@]}" "${idle[@]}" --corpus "$corpus" --mode unary --format "$format" --concurrency 256 --duration-s "$([ "$name" = warm ] && echo 8 || echo "$DURATION")" \
    --warmup-s "${BENCH_WARMUP_S:-12}" --processes 4 --channels 64 "${half[@]}" --server-log "$log" --json "$OUT/grpc-$name.json" 2>&1 \
    | grep -E "realtime|half peak|idle latency|rror" | tail -4
  [ -n "$spy" ] && wait "$spy"  # not a bare `wait`: nvidia-smi dmon runs in the background all along
  echo "$name: $(grep -ohE "batching: .*" "$log" | tail -1)" | tee -a "$OUT/batching.txt"
  { echo "----- $name"; tail -30 "$log"; } >> "$OUT/servers.log"
  for pid in $(grep -ohE "(supervisor|engine) pid=[0-9]+|frontends pids=[0-9,]+" "$log" 2>/dev/null | grep -oE "[0-9]+" | sort -u); do
    kill -0 "$pid" 2>/dev/null && { echo "killing leftover server process $pid"; kill -9 "$pid"; }
  done
}

if [ -z "${BENCH_NO_TESTS:-}" ]; then
  step "GPU tests (${BENCH_TESTS:=tests/engine/test_graphs.py tests/engine/test_device_workers.py})"
  # shellcheck disable=SC2086  # a list of test files
  LINGTING_SHARED_DIR=$ROOT/.dev/gpu/shared timeout "${BENCH_TESTS_TIMEOUT:-240}" python3 -m pytest -q -m gpu -p no:cacheprovider \
    $BENCH_TESTS > "$OUT/gpu_tests.txt" 2>&1
  grep -E "passed|failed|Error" "$OUT/gpu_tests.txt" | tail -6
fi
if [ -n "${BENCH_MODEL_AB:-}" ]; then  # the model alone, fused Triton FSMN kernel vs native ops, same process kind
  for variant in fused native; do
    step "model alone ($variant FSMN): eager and graphs, batch ${BENCH_MODEL_AB}"
    flag=()
    [ "$variant" = fused ] && flag=(--fused-fsmn)
    timeout 150 python3 -m bench.model_speed --model-dir "$MODEL" --corpus "$CORPUS" --dtype "${BENCH_DTYPE:-bf16}" \
      --batch-sizes "$BENCH_MODEL_AB" --min-time-s 1.5 --latency-repeats 20 --identity-utts 32 "${flag[@]}" \
      --json "$OUT/model_speed-$variant.json" 2>&1 | grep -E "INFO __main__|Error|error" | cut -c1-300
  done
fi
# A short level first: the first level after a machine start has been the slowest in every run.
[ -n "${BENCH_WARM_LEVEL:-}" ] && run_level warm "" ""
run_level base "${BENCH_BASE_SETTINGS:-}" "spy,half${BENCH_IDLE:+,idle}"
for level in $LEVELS; do
  IFS=: read -r name settings extra <<< "$level"
  run_level "$name" "$settings" "$extra"
done
if [ -n "${BENCH_PEER:-}" ]; then  # FunASR AutoModel on the same model, GPU and files, in this call
  step "FunASR peer (fastest, documented)"
  timeout 60 python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$TMPDIR/site-funasr" "$ASSETS"/whl-funasr/*.whl || echo "funasr wheel install failed"
  PYTHONPATH="$PYTHONPATH:$TMPDIR/site-funasr" timeout 150 python3 -m bench.funasr_peer --model-dir "$MODEL" \
    --vad-model-dir "$ASSETS/base/models/fsmn_vad" --corpus "$CORPUS" --device cuda:0 --settings fastest,documented \
    --max-long 0 --json "$OUT/funasr.json" 2>&1 | grep -E "INFO __main__|Error" | cut -c1-200
fi
kill "$DMON" 2>/dev/null
step "summary"
python3 - "$OUT" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for f in sorted(out.glob("grpc-*.json")):
    rows = json.loads(f.read_text())["rows"]
    for r in rows:
        lat = r.get("latency_ms", {})
        print(f"{f.stem:14s} rtfx {r.get('rtfx', 0):8.0f}  req/s {r.get('requests_per_s', 0):6.0f}  "
              f"p50 {lat.get('p50', 0):6.0f}  p99 {lat.get('p99', 0):6.0f}  "
              f"gpu MiB {r.get('gpu_mem_peak_process_mib', 0)}  cores {r.get('cores_by_process', {}).get('engine', '-')}")
EOF
step "done"
# The device tool returns at most 8 files: everything goes back as one archive.
(cd "$OUT" && tar czf /tmp/diag-results.tgz --exclude=log-diag.txt . && find . -mindepth 1 ! -name log-diag.txt -delete \
  && mv /tmp/diag-results.tgz .)
