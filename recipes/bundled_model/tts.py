"""Run the Debian TTS engines (espeak-ng, flite, festival) and return 16 kHz mono float32 audio.

Binaries come from the system or from an unpacked tree named by ``TtsEnv`` (the GPU machine has no
espeak; the recipe carries Debian packages and unpacks them with ``dpkg -x``).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TARGET_SR = 16000


@dataclass
class TtsEnv:
    """Where the engines live; ``root`` is a ``dpkg -x`` tree or "/" for the installed system."""

    root: Path = Path("/")
    extra_lib: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lib = self.root / "usr/lib/x86_64-linux-gnu"
        env = dict(os.environ)
        if self.root != Path("/"):
            # Debian puts some libraries (libtinfo) in /lib, not /usr/lib: both folders of the tree count.
            dirs = (self.extra_lib, lib, self.root / "lib/x86_64-linux-gnu")
            paths = [str(p) for p in dirs if p is not None]
            env["LD_LIBRARY_PATH"] = ":".join([*paths, env.get("LD_LIBRARY_PATH", "")])
            env["ESPEAK_DATA_PATH"] = str(lib / "espeak-ng-data")
        self.env = env

    def bin(self, name: str) -> str:
        return str(self.root / "usr/bin" / name)


def resample(x: np.ndarray, sr: int, target: int = TARGET_SR) -> np.ndarray:
    """FFT resampling (whole utterance at once): exact band-limiting, cheap for short clips."""
    if sr == target:
        return x.astype(np.float32)
    n_out = round(len(x) * target / sr)
    spec = np.fft.rfft(x.astype(np.float64))
    keep = n_out // 2 + 1
    if keep <= len(spec):
        spec = spec[:keep]
    else:
        spec = np.concatenate([spec, np.zeros(keep - len(spec), dtype=spec.dtype)])
    y = np.fft.irfft(spec, n_out) * (n_out / len(x))
    return y.astype(np.float32)


def _parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit PCM RIFF parser tolerant of espeak's streamed header (sizes left as 0xFFFFFFFF)."""
    if data[:4] != b"RIFF":
        raise ValueError("not a RIFF stream")
    pos = 12
    sr = 0
    while pos + 8 <= len(data):
        cid = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if cid == b"fmt ":
            sr = int.from_bytes(data[pos + 12 : pos + 16], "little")
            channels = int.from_bytes(data[pos + 10 : pos + 12], "little")
            if channels != 1:
                raise ValueError("mono expected")
        elif cid == b"data":
            body = (
                data[pos + 8 :]
                if size in (0, 0xFFFFFFFF) or pos + 8 + size > len(data)
                else data[pos + 8 : pos + 8 + size]
            )
            body = body[: len(body) // 2 * 2]
            return np.frombuffer(body, dtype="<i2").astype(np.float32) / 32768.0, sr
        pos += 8 + size + (size & 1)
    raise ValueError("no data chunk")


def speech_text_en(text: str) -> str:
    """What the synthesiser should read for a spoken-form label ("seven a m" is said "seven a.m.")."""
    return re.sub(r"\b([ap]) m\b", r"\1.m.", text)


def espeak(env: TtsEnv, text: str, voice: str, rate: int, pitch: int, gap: int = 0) -> np.ndarray:
    cmd = [
        env.bin("espeak-ng"),
        "-v",
        voice,
        "-s",
        str(rate),
        "-p",
        str(pitch),
        "-g",
        str(gap),
        "--stdout",
        text,
    ]
    out = subprocess.run(cmd, env=env.env, capture_output=True, check=True, timeout=60).stdout
    x, sr = _parse_wav(out)
    return resample(x, sr)


def flite(env: TtsEnv, text: str, voice: str, stretch: float, f0: float | None) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        cmd = [env.bin("flite"), "-voice", voice, "--setf", f"duration_stretch={stretch:.3f}"]
        if f0 is not None:
            cmd += ["--setf", f"int_f0_target_mean={f0:.0f}"]
        cmd += ["-t", text, "-o", tmp.name]
        subprocess.run(cmd, env=env.env, capture_output=True, check=True, timeout=60)
        x, sr = _parse_wav(Path(tmp.name).read_bytes())
    return resample(x, sr)


def festival_lr_f0(mean: float) -> str:
    """Scheme that moves a linear-regression intonation voice (``kal_diphone``) to F0 ``mean`` Hz.

    The voice maps its model's F0 (mean 170, std 34) onto a target of mean 105, std 14; a new target
    mean with the std scaled alike gives the same contour at another pitch. Must follow ``(voice_...)``,
    which resets the targets (so an item without it keeps the voice's own).
    """
    std = mean * 14.0 / 105.0
    return (
        f"(set! int_lr_params '((target_f0_mean {mean:.0f}) (target_f0_std {std:.1f})"
        " (model_f0_mean 170) (model_f0_std 34)))"
    )


def festival_batch(
    env: TtsEnv, items: list[tuple[str, str, float]], f0: list[float | None] | None = None
) -> list[np.ndarray | None]:
    """Synthesise (text, voice, stretch) items in one festival process (its start-up costs ~0.1 s).

    ``f0[i]``, where given and not None, is item i's F0 mean in Hz (``festival_lr_f0``; LR-intonation
    voices only); None keeps the voice's own pitch, and the script is then what it was before F0 existed.
    """
    with tempfile.TemporaryDirectory() as tmp:
        lines = []
        for i, (text, voice, stretch) in enumerate(items):
            safe = text.replace("\\", " ").replace('"', " ")
            lines.append(f"(voice_{voice})")
            hz = f0[i] if f0 is not None else None
            if hz is not None:
                lines.append(festival_lr_f0(float(hz)))
            lines.append(f"(Parameter.set 'Duration_Stretch {stretch:.3f})")
            lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{safe}")) "{tmp}/{i}.wav" \'riff)')
        script = Path(tmp) / "batch.scm"
        script.write_text("\n".join(lines) + "\n", encoding="utf-8")
        subprocess.run(
            [env.bin("festival"), "-b", str(script)], env=env.env, capture_output=True, timeout=600
        )
        out: list[np.ndarray | None] = []
        for i in range(len(items)):
            f = Path(tmp) / f"{i}.wav"
            if f.exists():
                x, sr = _parse_wav(f.read_bytes())
                out.append(resample(x, sr))
            else:
                out.append(None)
        return out
