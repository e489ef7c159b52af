"""Check the TTS engines before synthesising, so a run never loses a synthesizer silently.

A GPU run once trained without any flite speech: the carried tree lacked a library flite links, every
flite job exited 127, and the corpus only logged warnings. Two checks guard against that:

- ``unresolved_libraries``: the dynamic loader's view of each engine binary with the tree's library path;
  anything that resolves neither inside the tree (or the extra folder) nor to the base system that every
  machine running the recipe has (glibc, libstdc++, libgcc_s) is reported, even if this machine happens
  to have it installed.
- ``smoke``: one sentence with every voice the recipe uses (espeak-ng en/zh, flite, festival).

    python -m recipes.bundled_model.tts_check --root /tmp/tts --extra-lib .dev/gpu/stubs [--libs-only]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from recipes.bundled_model import tts, voices

ENGINES = ("espeak-ng", "flite", "festival")
# What the recipe may take from the host: glibc's own libraries and the C++ runtime (PyTorch needs it).
BASE_SYSTEM = {
    "linux-vdso.so.1",
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libstdc++.so.6",
    "libgcc_s.so.1",
}
EN_TEXT = "the quick check says one two three"
ZH_TEXT = "今天下午三点开会"


def _loader_view(env: tts.TtsEnv, binary: str) -> list[tuple[str, str]]:
    """(soname, resolved path or "not found") as ``ldd`` prints them, without needing ``ldd``."""
    run_env = dict(env.env, LD_TRACE_LOADED_OBJECTS="1")
    out = subprocess.run([binary], env=run_env, capture_output=True, text=True, timeout=30).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if not parts:
            continue
        if "=>" in parts:
            arrow = parts.index("=>")
            where = " ".join(parts[arrow + 1 :]).split(" (")[0].strip()
            rows.append((parts[0], where or "not found"))
        else:
            rows.append((Path(parts[0]).name, parts[0]))
    return rows


def unresolved_libraries(env: tts.TtsEnv) -> list[str]:
    """Problems with the shared libraries of each engine binary (empty when all is inside the tree)."""
    folders = [env.root, *([env.extra_lib] if env.extra_lib else [])]
    inside = [Path(os.path.abspath(d)) for d in folders] + [d.resolve() for d in folders]
    problems = []
    for name in ENGINES:
        binary = env.bin(name)
        if not Path(binary).exists():
            problems.append(f"{name}: no binary at {binary}")
            continue
        for soname, where in _loader_view(env, binary):
            if where == "not found":
                problems.append(f"{name}: {soname} not found")
            elif soname not in BASE_SYSTEM and not any(
                Path(os.path.abspath(where)).is_relative_to(d) for d in inside
            ):
                problems.append(f"{name}: {soname} comes from the host ({where}), not from the tree")
    return problems


def _usable(x: np.ndarray | None) -> bool:
    return x is not None and len(x) >= tts.TARGET_SR // 4 and float(np.abs(x).max()) > 1e-3


def smoke(env: tts.TtsEnv) -> list[str]:
    """Synthesise one sentence per voice; return what failed (empty when every voice speaks)."""
    say = tts.speech_text_en(EN_TEXT)
    espeak_voices = [
        (EN_TEXT, voices.EN_VOICES_TRAIN[0]),
        (EN_TEXT, f"{voices.EN_VOICES_TEST[0]}+{voices.TEST_VARIANTS[0]}"),
        (ZH_TEXT, voices.ZH_VOICE),
    ]
    failures = []
    for text, voice in espeak_voices:
        try:
            ok = _usable(tts.espeak(env, text, voice, 170, 50))
        except Exception as exc:  # the engine's own error is the useful message
            failures.append(f"espeak-ng {voice}: {exc}")
            continue
        if not ok:
            failures.append(f"espeak-ng {voice}: no usable audio")
    for voice in [*voices.FLITE_TRAIN, *voices.FLITE_TEST]:
        try:
            ok = _usable(tts.flite(env, say, voice, 1.0, None))
        except subprocess.CalledProcessError as exc:
            why = exc.stderr.decode(errors="replace")[-300:].strip()
            failures.append(f"flite {voice}: exit {exc.returncode}: {why}")
            continue
        except Exception as exc:
            failures.append(f"flite {voice}: {exc}")
            continue
        if not ok:
            failures.append(f"flite {voice}: no usable audio")
    fest_voices = [*voices.FESTIVAL_TRAIN, *voices.FESTIVAL_TEST]
    try:
        fest = tts.festival_batch(env, [(say, v, 1.0) for v in fest_voices])
    except Exception as exc:
        fest = [None] * len(fest_voices)
        failures.append(f"festival: {exc}")
    for voice, x in zip(fest_voices, fest, strict=True):
        if not _usable(x):
            failures.append(f"festival {voice}: no usable audio")
    return failures


def check(env: tts.TtsEnv, libs: bool = True, speech: bool = True) -> list[str]:
    """All problems found; the library check only applies to a carried tree, not to the host's engines."""
    problems = unresolved_libraries(env) if libs and env.root != Path("/") else []
    return problems + (smoke(env) if speech else [])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/", help="unpacked tree holding the TTS engines")
    ap.add_argument("--extra-lib", default=None, help="folder with the PulseAudio stand-ins")
    ap.add_argument("--libs-only", action="store_true", help="skip the synthesis of one sentence per voice")
    args = ap.parse_args()
    env = tts.TtsEnv(Path(args.root), Path(args.extra_lib) if args.extra_lib else None)
    problems = check(env, speech=not args.libs_only)
    for p in problems:
        print(f"TTS CHECK FAILED: {p}", file=sys.stderr)
    if problems:
        raise SystemExit(f"{len(problems)} TTS problem(s) under {args.root}; not synthesising")
    print(f"TTS check passed under {args.root}")


if __name__ == "__main__":
    main()
