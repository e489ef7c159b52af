#!/bin/bash
# One call on the GPU machine: unpack the TTS engines, synthesise the corpus in the background (niced, so
# the trainer keeps its CPU), train for MINUTES, evaluate, time, and pack what must come back into at most
# 8 files of < 16 MiB (the weights are split into parts; join them with cat).
# Usage (repo root): recipes/bundled_model/run_gpu.sh OUT_DIR [MINUTES] [WORKERS]
set -u
OUT=$1
MIN=${2:-7}
WORKERS=${3:-14}
REPO=$(pwd)
G=$REPO/.dev/gpu
mkdir -p "$OUT" /tmp/tts
for f in "$G"/debs/*.deb; do dpkg -x "$f" /tmp/tts; done
# festival looks for its Scheme library at the compiled-in /usr/share/festival
[ -e /usr/share/festival ] || cp -r /tmp/tts/usr/share/festival /usr/share/festival
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$G"/whl/*.whl
export PYTHONPATH=$REPO:/tmp/site PYTHONUNBUFFERED=1
python3 -c "import torch, soundfile; print(torch.__version__, torch.cuda.get_device_name(), soundfile.__libsndfile_version__)"
python3 -m recipes.bundled_model.tts_check --root /tmp/tts --extra-lib "$G/stubs" || exit 3
nice -n 15 python3 -m recipes.bundled_model.corpus --text "$G/text" --out /tmp/corpus --root /tmp/tts \
  --extra-lib "$G/stubs" --workers "$WORKERS" ${CORPUS_ARGS:-} > /tmp/corpus_log.txt 2>&1 &
M=/tmp/run/lingting-mini
timeout $(python3 -c "print(int($MIN * 60 + 75))") python3 -m recipes.bundled_model.train --corpus /tmp/corpus \
  --text "$G/text" --out $M --minutes "$MIN" ${TRAIN_ARGS:-} > /tmp/train.out 2>&1
tail -3 /tmp/train.out | cut -c1-300
python3 -m recipes.bundled_model.speed --model $M --corpus /tmp/corpus --out /tmp/run/speed_gpu.json | tail -3
tail -2 /tmp/corpus_log.txt
cp /tmp/corpus_log.txt /tmp/run/
(cd /tmp/run && tar czf "$OUT/meta.tgz" eval_gpu.json speed_gpu.json corpus_log.txt lingting-mini/am.mvn \
  lingting-mini/config.yaml lingting-mini/configuration.json lingting-mini/train_log.txt)
split -b 12M $M/model.safetensors "$OUT/model.safetensors.part_"
sha256sum $M/model.safetensors
python3 -c "
import json; d=json.load(open('/tmp/run/eval_gpu.json'))
for k, v in d.items(): print(k, {a: b for a, b in v.items() if a != 'examples'})"
ls -la "$OUT"
