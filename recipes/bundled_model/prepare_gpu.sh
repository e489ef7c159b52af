#!/bin/bash
# Builds what the two-call GPU run carries, in .dev/gpu (git-ignored), on a Debian bookworm machine with
# network: the corpus text (training text gzipped), the TTS engines as one pruned tar.xz (espeak-ng with
# only the English and Mandarin dictionaries; no docs), the PulseAudio stand-ins and the soundfile wheels.
# The tar.xz is then unpacked elsewhere and checked as the GPU machine will use it (clean environment;
# every shared library of each engine from the tree or glibc/libstdc++; one sentence per voice).
# Usage (repo root, venv with requirements.txt): recipes/bundled_model/prepare_gpu.sh [text] [stubs] [tts] [whl]
# (no argument: all four, in that order).
set -eu
G=.dev/gpu
PY=${PY:-.venv/bin/python}
PARTS=" ${*:-text stubs tts whl} "
want() { case "$PARTS" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
mkdir -p $G/debs $G/whl $G/stubs
if want text; then
  $PY -m recipes.bundled_model.make_text --out $G/text
  gzip -f -9 $G/text/train_en.jsonl $G/text/train_zh.jsonl
fi
if want stubs; then
  sh recipes/bundled_model/stubs/build.sh $G/stubs
fi
if want tts; then
  (cd $G/debs && apt-get download espeak-ng libespeak-ng1 espeak-ng-data libpcaudio0 libsonic0 flite libflite1 \
    festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts libestools2.5 festlex-cmu festlex-poslex \
    libasound2 libasound2-data libtinfo6 libgomp1)
  T=$(mktemp -d)
  for f in $G/debs/*.deb; do dpkg -x "$f" "$T"; done
  # Not prunable: the flite binary links every voice library, libflite_cmu_time_awb included (without
  # it flite exits 127 on a machine without flite, which is how one GPU run lost all its flite speech).
  rm -rf "$T"/usr/share/doc "$T"/usr/share/man "$T"/usr/share/lintian
  for d in "$T"/usr/lib/x86_64-linux-gnu/espeak-ng-data/*_dict; do
    case $(basename "$d") in en_dict | cmn_dict) ;; *) rm "$d" ;; esac
  done
  tar cf - -C "$T" . | xz -T0 -6 > $G/tts.tar.xz
  rm -rf "$T"
  C=$(mktemp -d)
  xz -dc $G/tts.tar.xz | tar xf - -C "$C"
  env -i PATH=/usr/bin:/bin HOME=/tmp $PY -m recipes.bundled_model.tts_check --root "$C" --extra-lib $G/stubs
  rm -rf "$C"
fi
if want whl; then
  (cd $G/whl && pip download -q --no-deps --only-binary :all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 soundfile cffi pycparser)
fi
du -sh $G/tts.tar.xz $G/text $G/whl $G/stubs
