#!/bin/bash
# One training run over two GPU calls (each <= 10 min). Call 1: unpack the TTS engines, synthesise the
# corpus in the background (niced, in a session of its own so that it outlives the call and goes on between
# the calls), train MIN1 minutes, save a full checkpoint in /tmp/ckpt and small int8 weights + fp16 parts
# under OUT. Call 2: resume the checkpoint (or, if the machine was released, the int8 weights carried in
# .dev/gpu/phase1/), leave call 1's synthesis running (or restart it where it stopped), train MIN2 more
# minutes (one LR schedule over MIN1+MIN2), evaluate and time in the training process, and pack <= 8 files of
# < 16 MiB under OUT.
# Training also stops by the call's own deadline, whatever MIN1/MIN2 say: T0 + CALL_LIMIT (600 s) minus what
# must follow it (POST1 15 s in call 1, POST2 35 s in call 2: eval, speed, packing).
# Usage (repo root): recipes/bundled_model/run_gpu2.sh OUT 1|2 [MIN1] [MIN2] [WORKERS] [END]
# END (call 1 only): keep the call open until END s while synthesis runs; 0 (the default since run 6): the
# synthesis runs on by itself, so the call ends when its training is packed.
set -u
OUT=$1
PHASE=$2
MIN1=${3:-9.1}
MIN2=${4:-9.1}
WORKERS=${5:-14}
END=${6:-0}
T0=$(date +%s)
LIMIT=${CALL_LIMIT:-600}
PY=${PY:-python3}
REPO=$(pwd)
G=$REPO/.dev/gpu
TTS=${TTS_ROOT:-/tmp/tts}
M=/tmp/run/lingting-mini
PIDF=/tmp/synth.pid
TOTAL=$($PY -c "print($MIN1 + $MIN2)")
mkdir -p "$OUT" /tmp/run /tmp/ckpt
# each line also goes to calls_log.txt, which comes back packed: the time audit of a run reads it (run 5's
# calls had to be reconstructed from the other logs, results/run6_time_audit.md)
say() { echo "$(date -u +%H:%M:%S) [$(($(date +%s) - T0)) s] call $PHASE: $*" | tee -a /tmp/run/calls_log.txt; }
say "starts: MIN1 $MIN1, MIN2 $MIN2, workers $WORKERS, END $END, limit $LIMIT s"
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
# for the record only, so in the background: run 5 waited for it (a torch import and a CUDA start) in each call
$PY -c "import torch, soundfile; print(torch.__version__, torch.cuda.get_device_name(), soundfile.__libsndfile_version__)" &
CHECK=$!
# the host's CPU goes into the corpus log: run 4 synthesised ~30 % slower per audio hour than run 3, and its
# voice mix explains only part of that (results/synth_speed.md); neither log said which CPU it ran on
echo "host: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)" \
  | tee -a /tmp/corpus_log.txt
SYN=""
if [ -s $PIDF ] && kill -0 "$(cat $PIDF)" 2>/dev/null; then
  SYN=$(cat $PIDF)
  say "synthesis of call 1 still running (pid $SYN), $(ls /tmp/corpus | grep -c '^train_.*[0-9].npz$') training shards"
elif [ -e /tmp/corpus/DONE ]; then
  say "synthesis already done"
else
  # every voice must speak before the GPU time goes to training (the corpus checks too, but in the background)
  $PY -m recipes.bundled_model.tts_check --root "$TTS" --extra-lib "$G/stubs" || { say "TTS check failed"; exit 3; }
  rm -f $PIDF
  DETACH=setsid
  command -v setsid > /dev/null || DETACH=""
  # Training shards first, the held-out splits after them (each job has its own seed: the same audio):
  # the trainer no longer waits ~6 s for them at the start of call 1, and they are done long before the
  # eval of call 2. In its own session the synthesis is not ended with call 1.
  $DETACH bash -c 'echo $$ > "$0"; exec nice -n 15 "$@"' $PIDF $PY -m recipes.bundled_model.corpus \
    --text "$G/text" --out /tmp/corpus --root "$TTS" --extra-lib "$G/stubs" --workers "$WORKERS" \
    --splits train,test_en,test_zh,hot_en,hot_zh ${CORPUS_ARGS:-} >> /tmp/corpus_log.txt 2>&1 < /dev/null &
  for _ in $(seq 50); do [ -s $PIDF ] && break; sleep 0.1; done
  SYN=$(cat $PIDF 2>/dev/null)
  say "synthesis started (pid $SYN${DETACH:+, own session})"
fi
if [ "$PHASE" = 1 ]; then POST=${POST1:-15}; else POST=${POST2:-35}; fi
STOP_BY=$((T0 + LIMIT - POST))
TLIM=$((T0 + LIMIT - 8 - $(date +%s)))  # a hung trainer still leaves 8 s to pack its last periodic export
KEEP="step|pool: .*0 utt|done|saved|waited|model|eval|speed|deadline"
if [ "$PHASE" = 1 ]; then
  timeout "$TLIM" $PY -m recipes.bundled_model.train --corpus /tmp/corpus \
    --text "$G/text" --out $M --minutes "$MIN1" --total-minutes "$TOTAL" --save /tmp/ckpt/phase1.pt \
    --save-small "$OUT/phase1_small.pt" --no-eval --stop-by "$STOP_BY" ${TRAIN_ARGS:-} 2>&1 \
    | grep --line-buffered -E "$KEEP" | cut -c1-200
  say "training ended"
  split -b 12M $M/model.safetensors "$OUT/model1.safetensors.part_"
  cp $M/train_log.txt /tmp/run/train_log_phase1.txt
  (cd /tmp/run && tar czf "$OUT/meta1.tgz" lingting-mini/am.mvn lingting-mini/config.yaml lingting-mini/progress.json \
    train_log_phase1.txt calls_log.txt)
  ls -la "$OUT"
  say "phase 1 packed"
  while [ $(($(date +%s) - T0)) -lt "$END" ] && kill -0 "$SYN" 2>/dev/null; do sleep 5; done
  tail -1 /tmp/corpus_log.txt
  ls /tmp/corpus | grep -c train_
  wait $CHECK || say "torch/soundfile check failed"
  say "phase 1 done"
  exit 0
fi
RESUME=(--resume /tmp/ckpt/phase1.pt)
if [ ! -e /tmp/ckpt/phase1.pt ]; then
  say "no checkpoint on this machine: restarting from .dev/gpu/phase1/phase1_small.pt"
  RESUME=(--init-model "$G/phase1/phase1_small.pt")
fi
timeout "$TLIM" $PY -m recipes.bundled_model.train --corpus /tmp/corpus --text "$G/text" --out $M \
  --minutes "$MIN2" --total-minutes "$TOTAL" "${RESUME[@]}" --stop-by "$STOP_BY" \
  --speed-out /tmp/run/speed_gpu.json ${TRAIN_ARGS:-} 2>&1 | grep --line-buffered -E "$KEEP" | cut -c1-300
say "training, eval and speed ended"
[ -n "$SYN" ] && { kill -- -"$SYN" 2>/dev/null || kill "$SYN" 2>/dev/null; }
tail -2 /tmp/corpus_log.txt
cp /tmp/corpus_log.txt /tmp/run/
[ -e /tmp/run/train_log_phase1.txt ] || echo "(phase 1 log: see call 1)" > /tmp/run/train_log_phase1.txt
say "packing"
(cd /tmp/run && tar czf "$OUT/meta.tgz" eval_gpu.json speed_gpu.json corpus_log.txt calls_log.txt \
  lingting-mini/am.mvn lingting-mini/config.yaml lingting-mini/configuration.json lingting-mini/train_log.txt \
  train_log_phase1.txt)
split -b 12M $M/model.safetensors "$OUT/model.safetensors.part_"
sha256sum $M/model.safetensors
$PY -c "
import json; d=json.load(open('/tmp/run/eval_gpu.json'))
for k, v in d.items(): print(k, {a: b for a, b in v.items() if a != 'examples'})"
ls -la "$OUT"
wait $CHECK || say "torch/soundfile check failed"
say "phase 2 done"
