#!/bin/bash
# One training run over two GPU calls (each <= 10 min). Call 1: unpack the TTS engines, synthesise the
# corpus in the background (niced), train MIN1 minutes, save a full checkpoint in /tmp/ckpt and small
# int8 weights + fp16 parts under OUT, then let synthesis run on until ~END seconds. Call 2: resume the
# checkpoint (or, if the machine was released, the int8 weights carried in .dev/gpu/phase1/), resume the
# synthesis where it stopped, train MIN2 more minutes (one LR schedule over MIN1+MIN2), evaluate, time,
# and pack <= 8 files of < 16 MiB under OUT.
# Usage (repo root): recipes/bundled_model/run_gpu2.sh OUT 1|2 [MIN1] [MIN2] [WORKERS] [END]
set -u
OUT=$1
PHASE=$2
MIN1=${3:-8.4}
MIN2=${4:-8.2}
WORKERS=${5:-14}
END=${6:-575}
T0=$(date +%s)
PY=${PY:-python3}
REPO=$(pwd)
G=$REPO/.dev/gpu
TTS=${TTS_ROOT:-/tmp/tts}
M=/tmp/run/lingting-mini
TOTAL=$($PY -c "print($MIN1 + $MIN2)")
say() { echo "[$(($(date +%s) - T0)) s] $*"; }
mkdir -p "$OUT" /tmp/run /tmp/ckpt
# unpack again when the carried tar.xz changed (a machine still warm from an earlier run keeps its old tree)
SUM=$(sha256sum "$G/tts.tar.xz" | cut -c1-64)
if [ "$(cat "$TTS/.tar_sha256" 2>/dev/null)" != "$SUM" ]; then
  mkdir -p "$TTS" && xz -T0 -dc "$G/tts.tar.xz" | tar xf - -C "$TTS" && echo "$SUM" > "$TTS/.tar_sha256"
  say "unpacked the TTS engines"
fi
[ -e /usr/share/festival ] || cp -r "$TTS/usr/share/festival" /usr/share/festival
[ -e /tmp/site/soundfile.py ] || $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --target /tmp/site "$G"/whl/*.whl
export PYTHONPATH=$REPO:/tmp/site PYTHONUNBUFFERED=1
$PY -c "import torch, soundfile; print(torch.__version__, torch.cuda.get_device_name(), soundfile.__libsndfile_version__)"
# the host's CPU goes into the corpus log: run 4 synthesised ~30 % slower per audio hour than run 3, and its
# voice mix explains only part of that (results/synth_speed.md); neither log said which CPU it ran on
echo "host: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)" \
  | tee -a /tmp/corpus_log.txt
# every voice must speak before the GPU time goes to training (the corpus checks too, but in the background)
$PY -m recipes.bundled_model.tts_check --root "$TTS" --extra-lib "$G/stubs" || { say "TTS check failed"; exit 3; }
nice -n 15 $PY -m recipes.bundled_model.corpus --text "$G/text" --out /tmp/corpus --root "$TTS" \
  --extra-lib "$G/stubs" --workers "$WORKERS" ${CORPUS_ARGS:-} >> /tmp/corpus_log.txt 2>&1 &
SYN=$!
say "synthesis started (pid $SYN)"
if [ "$PHASE" = 1 ]; then
  timeout $($PY -c "print(int($MIN1 * 60 + 60))") $PY -m recipes.bundled_model.train --corpus /tmp/corpus \
    --text "$G/text" --out $M --minutes "$MIN1" --total-minutes "$TOTAL" --save /tmp/ckpt/phase1.pt \
    --save-small "$OUT/phase1_small.pt" --no-eval ${TRAIN_ARGS:-} 2>&1 | grep --line-buffered -E "step|pool: .*0 utt|done|saved|waited|model" | cut -c1-200
  split -b 12M $M/model.safetensors "$OUT/model1.safetensors.part_"
  cp $M/train_log.txt /tmp/run/train_log_phase1.txt
  (cd /tmp/run && tar czf "$OUT/meta1.tgz" lingting-mini/am.mvn lingting-mini/config.yaml lingting-mini/progress.json \
    train_log_phase1.txt)
  ls -la "$OUT"
  say "phase 1 packed; synthesis continues until ${END} s"
  while [ $(($(date +%s) - T0)) -lt "$END" ] && kill -0 $SYN 2>/dev/null; do sleep 5; done
  tail -1 /tmp/corpus_log.txt
  ls /tmp/corpus | grep -c train_
  say "phase 1 done"
  exit 0
fi
RESUME=(--resume /tmp/ckpt/phase1.pt)
if [ ! -e /tmp/ckpt/phase1.pt ]; then
  say "no checkpoint on this machine: restarting from .dev/gpu/phase1/phase1_small.pt"
  RESUME=(--init-model "$G/phase1/phase1_small.pt")
fi
timeout $($PY -c "print(int($MIN2 * 60 + 90))") $PY -m recipes.bundled_model.train --corpus /tmp/corpus \
  --text "$G/text" --out $M --minutes "$MIN2" --total-minutes "$TOTAL" "${RESUME[@]}" ${TRAIN_ARGS:-} 2>&1 \
  | grep --line-buffered -E "step|pool: .*0 utt|done|saved|waited|model|eval" | cut -c1-300
kill $SYN 2>/dev/null
$PY -m recipes.bundled_model.speed --model $M --corpus /tmp/corpus --out /tmp/run/speed_gpu.json | tail -3
tail -2 /tmp/corpus_log.txt
cp /tmp/corpus_log.txt /tmp/run/
[ -e /tmp/run/train_log_phase1.txt ] || echo "(phase 1 log: see call 1)" > /tmp/run/train_log_phase1.txt
(cd /tmp/run && tar czf "$OUT/meta.tgz" eval_gpu.json speed_gpu.json corpus_log.txt lingting-mini/am.mvn \
  lingting-mini/config.yaml lingting-mini/configuration.json lingting-mini/train_log.txt train_log_phase1.txt)
split -b 12M $M/model.safetensors "$OUT/model.safetensors.part_"
sha256sum $M/model.safetensors
$PY -c "
import json; d=json.load(open('/tmp/run/eval_gpu.json'))
for k, v in d.items(): print(k, {a: b for a, b in v.items() if a != 'examples'})"
ls -la "$OUT"
say "phase 2 done"
