#!/bin/bash
# One call on the GPU machine: unpack the TTS engines, synthesise the corpus in the background, train two
# configurations side by side on the one GPU for MINUTES, evaluate, keep the better, time it.
# Usage (repo root): recipes/bundled_model/run_gpu.sh OUT_DIR [MINUTES] [WORKERS]
set -u
OUT=$1
MIN=${2:-6.5}
WORKERS=${3:-11}
REPO=$(pwd)
G=$REPO/.dev/gpu
mkdir -p "$OUT" /tmp/tts
for f in "$G"/debs/*.deb; do dpkg -x "$f" /tmp/tts; done
# festival looks for its Scheme library at the compiled-in /usr/share/festival
[ -e /usr/share/festival ] || cp -r /tmp/tts/usr/share/festival /usr/share/festival
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$G"/whl/*.whl
export PYTHONPATH=$REPO:/tmp/site PYTHONUNBUFFERED=1
L=$G/stubs:/tmp/tts/usr/lib/x86_64-linux-gnu
LD_LIBRARY_PATH=$L ESPEAK_DATA_PATH=/tmp/tts/usr/lib/x86_64-linux-gnu/espeak-ng-data /tmp/tts/usr/bin/espeak-ng \
  --stdout -v cmn-latn-pinyin "你好" | wc -c
LD_LIBRARY_PATH=$L /tmp/tts/usr/bin/flite -t hello -o /tmp/f.wav && ls -la /tmp/f.wav
python3 -c "import torch, soundfile; print(torch.__version__, torch.cuda.get_device_name(), soundfile.__libsndfile_version__)"
nproc
python3 -m recipes.bundled_model.corpus --text "$G/text" --out /tmp/corpus --root /tmp/tts --extra-lib "$G/stubs" \
  --workers "$WORKERS" ${CORPUS_ARGS:-} > "$OUT/corpus_log.txt" 2>&1 &
T="python3 -m recipes.bundled_model.train --corpus /tmp/corpus --text $G/text --minutes $MIN ${TRAIN_ARGS:-}"
$T --out /tmp/runA/lingting-mini --lr 1.5e-3 --warmup 600 --budget-seconds 400 --seed 1 > /tmp/runA.out 2>&1 &
PA=$!
$T --out /tmp/runB/lingting-mini --lr 8e-4 --warmup 400 --budget-seconds 250 --seed 2 > /tmp/runB.out 2>&1 &
PB=$!
wait $PA $PB
tail -4 /tmp/runA.out /tmp/runB.out | cut -c1-400
python3 -m recipes.bundled_model.pick --runs /tmp/runA /tmp/runB --out "$OUT"
tail -3 "$OUT/corpus_log.txt"
python3 -m recipes.bundled_model.speed --model "$OUT/lingting-mini" --corpus /tmp/corpus --out "$OUT/speed_gpu.json"
rm -f "$OUT/lingting-mini/"*.bpe.model
ls -la "$OUT" "$OUT/lingting-mini"
