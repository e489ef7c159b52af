#!/usr/bin/env bash
# Prepare what bench/run_all.sh needs on the GPU machine, in git-ignored folders under .dev/gpu/bench/
# (../shared does not travel there, and nothing can be downloaded there). Run here, once:
#
#   bench/stage_assets.sh            # base + all wheel groups
#
# Then name the folders a stage needs in the device call's `carry` (64 MiB in all, with the working tree):
#   base          tiny parity model dirs (grown to full size there), source speech, generated gRPC stubs (~6 MB)
#   whl-lingting  grpcio, protobuf, health/reflection/status, googleapis protos, SQLAlchemy, alembic (~14 MB)
#   whl-funasr    FunASR 1.4.16 and the seven wheels it needs on that machine (~6 MB)
#   whl-mp3       PyAV, for decoding MP3 in the server (~36 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${LINGTING_SHARED_DIR:-../shared}
DEST=${BENCH_ASSETS:-.dev/gpu/bench}
git check-ignore -q "$DEST" || { echo "$DEST is not git-ignored; refusing" >&2; exit 2; }
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python

rm -rf "$DEST/base"
mkdir -p "$DEST/base/models" "$DEST/base/audio"
for family in paraformer sensevoice fsmn_vad; do
  cp -r --no-preserve=mode "$SHARED/parity/$family/model" "$DEST/base/models/$family"
done
for f in audio_meta.json long_16k.wav en_16k.wav zh_16k.wav en2_16k.wav; do
  cp --no-preserve=mode "$SHARED/parity/paraformer/audio/$f" "$DEST/base/audio/"
done
"$PY" scripts/gen_proto.py >/dev/null
cp -r lingting "$DEST/base/lingting"

for group in lingting funasr mp3; do
  [ -d "$DEST/whl-$group" ] && [ -n "$(ls "$DEST/whl-$group" 2>/dev/null)" ] && continue
  WHEEL_DIR="$DEST/whl-$group" bench/fetch_wheels.sh "$group" 2>&1 | grep -v '^WARNING' | tail -1
done
du -sh "$DEST"/*
echo "working tree that travels (tracked + untracked, not ignored):"
{ git ls-files; git ls-files --others --exclude-standard; } | xargs -d '\n' du -cb 2>/dev/null | tail -1
