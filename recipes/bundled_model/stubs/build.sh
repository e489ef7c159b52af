#!/bin/sh
# Builds the PulseAudio stand-ins into $1 (x86-64; run on the machine that builds the corpus or anywhere x86-64).
set -e
out=${1:-stubs_out}
mkdir -p "$out"
here=$(dirname "$0")
gcc -shared -fPIC -O1 -Wl,--version-script="$here/pulse.map" -Wl,-soname,libpulse.so.0 -o "$out/libpulse.so.0" "$here/pulse_stub.c"
gcc -shared -fPIC -O1 -Wl,--version-script="$here/pulse.map" -Wl,-soname,libpulse-simple.so.0 -o "$out/libpulse-simple.so.0" "$here/pulse_stub.c"
