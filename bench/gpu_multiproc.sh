#!/usr/bin/env bash
# One device call (~5 minutes on an H100): gRPC throughput of the full-size Paraformer-large (random weights,
# bf16) with 1, 4, 8 and 12 front-end processes (`lingting serve --frontends N`), unary 16 kHz WAV at c=256.
#   grpc-fe<N>.json   one loadgen result per N (RTFx, latency, CPU per server process, GPU memory);
#                     grpc-fe<N>-dw<W>.json with W > 1 device workers in the engine process
#   grpc-fe<N>-noitn.json  the largest N again without ITN (BENCH_NO_ITN_TOO=0 skips). The random model's
#                     output is all CJK, so every request takes the Chinese ITN: wetext's FSTs (~7 ms of CPU a
#                     request here) if its wheel is installed there, else the built-in rules (~0.1 ms); a
#                     "wetext unavailable" line in servers.log says which.
#   summary.json      the rows side by side; also printed as a table
#   servers.log       the end of each server's log;  log-multiproc.txt  this script's output
# Carry: .dev/gpu/bench/base .dev/gpu/bench/whl-lingting   (bench/stage_assets.sh prepares them)
# Usage on the device: BENCH_COMMIT=<sha> bench/gpu_multiproc.sh          (timeout_s 590; ~5-6 minutes)
# Knobs: BENCH_FRONTENDS [1 4 8 12]  BENCH_DURATION_S [30]  BENCH_CONCURRENCY [256]  BENCH_UTTS [160]
#        BENCH_CLIENT_PROCS [4]  BENCH_CHANNELS [64] connections per client process (SO_REUSEPORT spreads
#        connections, not calls: 16 connections over 12 front-ends would leave some idle)
#        LEVEL_BOX [100] seconds per N  BENCH_DEVICE [cuda]  BENCH_DTYPE [bf16]
#        BENCH_DEVICE_WORKERS [1] the engine's device_workers (batch threads, one CUDA stream each); a list
#        ("1 2") runs every level once per value, for an A/B in one call
#        BENCH_SMALL [0] (1: a 4-block model, for a dry run on a CPU)  BENCH_NO_WHEELS (skip the install)
# No `set -e`: every step has its own time box, and one failed level must not lose the others' results.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
export TMPDIR=${TMPDIR:-/var/tmp} PYTHONUNBUFFERED=1
OUT=${OUT:-$ROOT/bench-out/multiproc}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log-multiproc.txt") 2>&1
t0=$(date +%s)
step() { echo "=== [$(($(date +%s) - t0)) s] $*"; }
PY=python3
[ -x .venv/bin/python ] && PY=$ROOT/.venv/bin/python # a dry run here
DEVICE=${BENCH_DEVICE:-cuda} DTYPE=${BENCH_DTYPE:-bf16}
WORK=${BENCH_WORK:-$TMPDIR/lingting-bench}
small=()
[ "${BENCH_SMALL:-0}" = 1 ] && small=(--small)
MODEL=$WORK/paraformer-large$([ "${BENCH_SMALL:-0}" = 1 ] && echo -small)
ASSETS=.dev/gpu/bench
AUDIO=$ASSETS/base/audio
UTTS=${BENCH_UTTS:-160}
CORPUS=$WORK/corpus-u$UTTS-l0x10-wav
DURATION=${BENCH_DURATION_S:-30}
CONC=${BENCH_CONCURRENCY:-256}
FRONTENDS=${BENCH_FRONTENDS:-1 4 8 12}
runs=()
for dw in ${BENCH_DEVICE_WORKERS:-1}; do
  for n in $FRONTENDS; do runs+=("$n:itn:$dw"); done
  [ "${BENCH_NO_ITN_TOO:-1}" = 1 ] && runs+=("${n}:noitn:$dw")
done
export BENCH_COMMIT=${BENCH_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}

step "machine (commit $BENCH_COMMIT)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "cpus $(nproc); $("$PY" --version 2>&1); /dev/shm: $(df -h /dev/shm 2>/dev/null | tail -1)"

step "wheels"
if [ -z "${BENCH_NO_WHEELS:-}" ]; then
  if ! timeout 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$TMPDIR/site" "$ASSETS"/whl-lingting/*.whl; then
    echo "wheel install failed; stopping"
    exit 1
  fi
fi
export PYTHONPATH="$ROOT:$TMPDIR/site:$ROOT/$ASSETS/base"
export PATH="$TMPDIR/site/bin:$PATH"
mkdir -p "$WORK"

step "full-size Paraformer-large (random weights) and a WAV corpus of $UTTS utterances"
if [ ! -f "$MODEL/.done" ]; then
  timeout 150 "$PY" -m bench.build_large paraformer "$ASSETS/base/models/paraformer" "$MODEL" "${small[@]}" \
    --device "$DEVICE" --calibrate-wav "$AUDIO/en_16k.wav" --calibrate-wav "$AUDIO/zh_16k.wav" \
    --calibrate-wav "$AUDIO/en2_16k.wav" && touch "$MODEL/.done"
fi
if [ ! -f "$CORPUS/corpus.json" ]; then
  timeout 120 "$PY" -m bench.corpus "$AUDIO" "$CORPUS" --utterances "$UTTS" --long 0 --formats wav --workers 8
fi
if [ ! -f "$MODEL/.done" ] || [ ! -f "$CORPUS/corpus.json" ]; then
  echo "no model or corpus; stopping"
  exit 1
fi

: >"$OUT/servers.log"
for run in "${runs[@]}"; do
  IFS=: read -r n kind dw <<<"$run"
  name=grpc-fe$n
  [ "$dw" != 1 ] && name=$name-dw$dw
  itn=()
  if [ "$kind" = noitn ]; then
    name=$name-noitn
    itn=(--no-itn)
  fi
  step "gRPC unary WAV, c=$CONC, $n front-end process(es), $dw device worker(s), ${DURATION} s ${itn[*]}"
  log="$WORK/server-$name.log"
  rm -f "$log"
  # timeout signals loadgen's whole process group: the server stops in order and loadgen keeps its rows.
  timeout -k 15 "${LEVEL_BOX:-100}" "$PY" -m bench.loadgen --serve --frontends "$n" --model-dir "$MODEL" \
    --device "$DEVICE" --dtype "$DTYPE" --corpus "$CORPUS" --mode unary --format wav --concurrency "$CONC" \
    --duration-s "$DURATION" --warmup-s 3 --processes "${BENCH_CLIENT_PROCS:-4}" \
    --channels "${BENCH_CHANNELS:-64}" --server-log "$log" --server-setting "device_workers=$dw" \
    "${itn[@]}" --json "$OUT/$name.json" 2>&1 | grep -v "^{" | tail -4
  echo "loadgen exit ${PIPESTATUS[0]}"
  {
    echo "----- $name"
    tail -c 6000 "$log" 2>/dev/null
  } >>"$OUT/servers.log"
  # Nothing of this level may outlive it (a leftover engine would hold GPU memory in the next one).
  pids=$(grep -ohE "(supervisor|engine) pid=[0-9]+|frontends pids=[0-9,]+" "$log" 2>/dev/null | grep -oE "[0-9]+" | sort -u)
  for pid in $pids; do
    if kill -0 "$pid" 2>/dev/null; then
      echo "process $pid of the server is still alive; killing it"
      kill -9 "$pid" 2>/dev/null
    fi
  done
  leftover=$(ls /dev/shm 2>/dev/null | grep -c '^lingting-' || true)
  [ "$leftover" != 0 ] && echo "warning: $leftover lingting arena file(s) left in /dev/shm"
done

step "summary"
"$PY" - "$OUT" <<'EOF'
import json, re, sys
from pathlib import Path

out = Path(sys.argv[1])
rows = []
def parse(path):
    m = re.fullmatch(r"grpc-fe(\d+)(?:-dw(\d+))?(-noitn)?", path.stem)
    return (int(m[1]), int(m[2] or 1), bool(m[3])) if m else None

for path in sorted((p for p in out.glob("grpc-fe*.json") if parse(p)), key=lambda p: (parse(p)[1], parse(p)[0], parse(p)[2])):
    doc = json.loads(path.read_text())
    n = doc.get("server", {}).get("frontends")
    for row in doc.get("rows", []):
        by = row.get("cores_by_process") or {}
        rows.append({
            "frontends": n,
            "device_workers": parse(path)[1],
            "itn": not parse(path)[2],
            "setting": row.get("setting"),
            "rtfx": row.get("rtfx"),
            "requests_per_s": row.get("requests_per_s"),
            "latency_p50_ms": row.get("latency_ms", {}).get("p50"),
            "latency_p99_ms": row.get("latency_ms", {}).get("p99"),
            "server_p50_ms": row.get("server_ms", {}).get("p50"),
            "errors": row.get("errors"),
            "cores_server": row.get("cores_server"),
            "cores_engine": by.get("engine", row.get("cores_server") if n == 1 else None),
            "cores_frontends": round(sum(v for k, v in by.items() if k.startswith("frontend-")), 2) if by else None,
            "cores_client": row.get("cores_client"),
            "gpu_mem_peak_process_mib": row.get("gpu_mem_peak_process_mib"),
            "commit": doc.get("meta", {}).get("commit"),
            "date": doc.get("meta", {}).get("date"),
        })
(out / "summary.json").write_text(json.dumps(rows, indent=1))
print(f"{'N':>3} {'dw':>3} {'itn':>5} {'RTFx':>8} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'srv p50':>8} {'cores':>6} {'engine':>6} {'fronts':>6} {'client':>6} errors")
for r in rows:
    print(f"{r['frontends']!s:>3} {r['device_workers']!s:>3} {r['itn']!s:>5} {r['rtfx']!s:>8} {r['requests_per_s']!s:>7} {r['latency_p50_ms']!s:>8} "
          f"{r['latency_p99_ms']!s:>8} {r['server_p50_ms']!s:>8} {r['cores_server']!s:>6} {r['cores_engine']!s:>6} "
          f"{r['cores_frontends']!s:>6} {r['cores_client']!s:>6} {r['errors']}")
EOF
step "done"
ls -la "$OUT"
