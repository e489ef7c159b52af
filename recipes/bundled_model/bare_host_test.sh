#!/bin/bash
# Runs the carried TTS engines as on a machine with no Debian TTS packages: in a private mount namespace
# (root, util-linux unshare), the host's library folder is replaced by one holding only glibc, libstdc++
# and libgcc_s, and the tree's festival data sits at /usr/share/festival (run_gpu2.sh copies it there).
# Each engine then speaks one sentence per voice with a clean environment and the library path tts.py
# sets. Nothing changes outside the namespace.
# Usage (repo root): recipes/bundled_model/bare_host_test.sh [.dev/gpu/tts.tar.xz] [.dev/gpu/stubs]
set -eu
TAR=$(realpath "${1:-.dev/gpu/tts.tar.xz}")
STUBS=$(realpath "${2:-.dev/gpu/stubs}")
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/tree" "$W/base" "$W/out"
xz -dc "$TAR" | tar xf - -C "$W/tree"
for l in libc.so.6 libm.so.6 libstdc++.so.6 libgcc_s.so.1 ld-linux-x86-64.so.2; do
  cp -L "/lib/x86_64-linux-gnu/$l" "$W/base/"
done
R=$W/tree
LIBS=$STUBS:$R/usr/lib/x86_64-linux-gnu:$R/lib/x86_64-linux-gnu
cat > "$W/speak.sh" << EOF
set -u
E="/usr/bin/env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH=$LIBS ESPEAK_DATA_PATH=$R/usr/lib/x86_64-linux-gnu/espeak-ng-data"
fail=0
for v in en-us en-us-nyc+m7 cmn-latn-pinyin; do
  \$E $R/usr/bin/espeak-ng -v \$v --stdout "today at three" > $W/out/espeak_\$v.wav || { echo "espeak-ng \$v: exit \$?"; fail=1; }
done
for v in kal16 awb slt kal rms; do
  \$E $R/usr/bin/flite -voice \$v -t "today at three" -o $W/out/flite_\$v.wav || { echo "flite \$v: exit \$?"; fail=1; }
done
for v in kal_diphone cmu_us_slt_arctic_hts ked_diphone; do
  echo "(voice_\$v) (utt.save.wave (utt.synth (Utterance Text \"today at three\")) \"$W/out/festival_\$v.wav\" 'riff)"
done > $W/fest.scm
\$E $R/usr/bin/festival -b $W/fest.scm || { echo "festival: exit \$?"; fail=1; }
exit \$fail
EOF
unshare -m --propagation private sh -c "
  mount --bind '$R/usr/share/festival' /usr/share/festival 2>/dev/null || { mkdir -p /usr/share/festival && mount --bind '$R/usr/share/festival' /usr/share/festival; }
  mount --bind '$W/base' /usr/lib/x86_64-linux-gnu
  /bin/sh '$W/speak.sh'"
rc=$?
bad=0
for v in espeak_en-us espeak_en-us-nyc+m7 espeak_cmn-latn-pinyin flite_kal16 flite_awb flite_slt flite_kal flite_rms \
  festival_kal_diphone festival_cmu_us_slt_arctic_hts festival_ked_diphone; do
  n=$(stat -c %s "$W/out/$v.wav" 2>/dev/null || echo 0)
  echo "$v: $n bytes"
  [ "$n" -gt 8000 ] || bad=1
done
[ $rc = 0 ] && [ $bad = 0 ] && echo "bare-host test passed" || { echo "bare-host test FAILED"; exit 1; }
