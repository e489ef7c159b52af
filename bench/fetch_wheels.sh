#!/usr/bin/env bash
# Download the wheels bench/wheels.txt lists (for the GPU machine: CPython 3.12, manylinux x86-64) into
# .whl/ at the repository root. Run here, where the network is; the folder is git-ignored and carried to the
# GPU machine with the device call (carry: [".whl"]). Groups: funasr, lingting, mp3 (default: all).
# WHEEL_DIR picks another (git-ignored) folder, e.g. to carry only one group: a call carries 64 MiB at most.
#
#   bench/fetch_wheels.sh                 # everything into .whl/
#   WHEEL_DIR=.dev/gpu/whl-funasr bench/fetch_wheels.sh funasr
set -euo pipefail
cd "$(dirname "$0")/.."
groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(funasr lingting mp3)
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=.venv/bin/python
DIR=${WHEEL_DIR:-.whl}
[ "$DIR" = .whl ] && { grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude; }
git check-ignore -q "$DIR" || { echo "$DIR is not git-ignored; refusing" >&2; exit 2; }
mkdir -p "$DIR"

pins=()
for group in "${groups[@]}"; do
  while IFS= read -r pin; do pins+=("$pin"); done < <(
    awk -v g="[$group]" '/^\[/{on=($0==g); next} on && NF && $1 !~ /^#/ {print $1}' bench/wheels.txt)
done
mapfile -t pins < <(printf '%s\n' "${pins[@]}" | sort -u)

binary=(); sdist_only=()
for pin in "${pins[@]}"; do
  case "$pin" in
    antlr4-python3-runtime==*|jieba==*) sdist_only+=("$pin") ;;  # only sdists on the index; pure Python
    *) binary+=("$pin") ;;
  esac
done

if [ ${#binary[@]} -gt 0 ]; then
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DIR" "${binary[@]}"
fi
if [ ${#sdist_only[@]} -gt 0 ]; then
  "$PY" -m pip wheel -q --no-deps -w "$DIR" "${sdist_only[@]}"
fi
du -ch "$DIR"/*.whl | tail -1
ls "$DIR"
