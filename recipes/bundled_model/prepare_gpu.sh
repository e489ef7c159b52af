#!/bin/bash
# Builds what the two-call GPU run carries, in .dev/gpu (git-ignored), on a Debian bookworm machine with
# network: the corpus text (training text gzipped), the TTS engines as one pruned tar.xz (espeak-ng with
# only the English and Mandarin dictionaries; no docs), the PulseAudio stand-ins and the soundfile wheels.
# Usage (repo root, venv with requirements.txt): recipes/bundled_model/prepare_gpu.sh
set -eu
G=.dev/gpu
PY=${PY:-.venv/bin/python}
mkdir -p $G/debs $G/whl $G/stubs
$PY -m recipes.bundled_model.make_text --out $G/text
gzip -f -9 $G/text/train_en.jsonl $G/text/train_zh.jsonl
(cd $G/debs && apt-get download espeak-ng libespeak-ng1 espeak-ng-data libpcaudio0 libsonic0 flite libflite1 \
  festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts libestools2.5 festlex-cmu festlex-poslex \
  libasound2 libasound2-data libtinfo6 libgomp1)
T=$(mktemp -d)
for f in $G/debs/*.deb; do dpkg -x "$f" "$T"; done
rm -rf "$T"/usr/share/doc "$T"/usr/share/man "$T"/usr/share/lintian "$T"/usr/lib/x86_64-linux-gnu/libflite_cmu_time_awb*
for d in "$T"/usr/lib/x86_64-linux-gnu/espeak-ng-data/*_dict; do
  case $(basename "$d") in en_dict | cmn_dict) ;; *) rm "$d" ;; esac
done
tar cf - -C "$T" . | xz -T0 -6 > $G/tts.tar.xz
rm -rf "$T"
sh recipes/bundled_model/stubs/build.sh $G/stubs
(cd $G/whl && pip download -q --no-deps --only-binary :all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 soundfile cffi pycparser)
du -sh $G/tts.tar.xz $G/text $G/whl $G/stubs
