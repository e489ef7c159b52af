#!/usr/bin/env bash
# CPU fallback target: the bundled model (or MODEL_DIR) on this machine's CPU, at least 20x realtime.
# Runs here, not on the GPU machine. Writes $OUT/cpu.json (default $TMPDIR/lingting-bench-out/cpu/) for bench/report.py.
#
#   bench/cpu_bench.sh                 # the bundled model
#   bench/cpu_bench.sh MODEL_DIR       # any FunASR-format directory (e.g. a parity model, for a dry run)
# Knobs: BENCH_UTTS [40] utterances, BENCH_DURATION_S [20] per level, BENCH_CONCURRENCY [1,2,4],
#        BENCH_THREADS [all cores], BENCH_SOURCE [../shared/parity/paraformer/audio] speech to build from.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=.venv/bin/python
MODEL_DIR=${1:-$("$PY" -c 'from asr_engine.engine import default_model_dir; print(default_model_dir())')}
OUT=${OUT:-${TMPDIR:-/tmp}/lingting-bench-out/cpu}
SOURCE=${BENCH_SOURCE:-${LINGTING_SHARED_DIR:-../shared}/parity/paraformer/audio}
CORPUS=${BENCH_WORK:-${TMPDIR:-/tmp}/lingting-bench-cpu}/corpus-u${BENCH_UTTS:-40}
THREADS=${BENCH_THREADS:-$(nproc)}
mkdir -p "$OUT"
if [ ! -f "$CORPUS/corpus.json" ]; then
  "$PY" -m bench.corpus "$SOURCE" "$CORPUS" --utterances "${BENCH_UTTS:-40}" --long 0 --formats wav --workers 2
fi
echo "model: $MODEL_DIR; $(nproc) cores, torch threads $THREADS"
"$PY" -m bench.engine_bench --model-dir "$MODEL_DIR" --corpus "$CORPUS" --device cpu --dtype fp32 \
  --threads "$THREADS" --modes model,engine,latency --batch-sizes 1,4,16 --concurrency "${BENCH_CONCURRENCY:-1,2,4}" \
  --duration-s "${BENCH_DURATION_S:-20}" --latency-repeats 30 --json "$OUT/cpu.json" | grep -v "^{'group': 'profile'"
