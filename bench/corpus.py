"""The benchmark corpus, generated deterministically from a folder of real speech WAVs.

No network and no TTS at run time: the speech comes from the parity WAVs (espeak-ng English and Mandarin),
cut into sentences where ``audio_meta.json`` says they are, then concatenated with pauses, gain- and
rate-perturbed. Utterances are 2-20 s; long recordings are minutes of the same material with meeting-like
pauses. Each item is written as 16 kHz mono PCM16 WAV and, optionally, 44.1 kHz mono MP3 (what phones and
browsers upload). The same seed and source give the same bytes.

    python bench/corpus.py SOURCE_DIR OUT_DIR --utterances 200 --long 2 --long-min 10
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import wave
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "CorpusSpec",
    "build_corpus",
    "encode_mp3",
    "load_manifest",
    "load_pieces",
    "long_recording",
    "make_long",
    "make_utterance",
    "read_wav",
    "resample_linear",
    "wav_bytes",
]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
MP3_RATE = 44100
# Whole source files that are speech from start to end (the rest are cut by audio_meta.json or skipped).
_WHOLE_FILES = ("en_16k.wav", "zh_16k.wav", "en2_16k.wav")
_NOISE_LSB = 8.0  # the parity audio's own noise floor (about -72 dBFS)


@dataclass(frozen=True, kw_only=True)
class CorpusSpec:
    """What to generate. Durations in seconds unless the name says minutes."""

    seed: int = 20261121
    utterances: int = 200
    utt_min_s: float = 2.0
    utt_max_s: float = 20.0
    long_count: int = 2
    long_min_minutes: float = 10.0
    long_max_minutes: float = 60.0
    formats: tuple[str, ...] = ("wav", "mp3")
    long_formats: tuple[str, ...] = ("wav",)
    workers: int = 4


@dataclass(frozen=True, kw_only=True)
class CorpusItem:
    """One generated recording; ``files`` maps a format name to a path relative to the corpus folder."""

    id: str
    kind: str  # "utt" or "long"
    duration_s: float
    files: dict[str, str] = field(default_factory=dict)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """PCM16 WAV -> (float32 mono samples in [-1, 1], sample rate); channels are averaged."""
    with wave.open(str(path), "rb") as handle:
        if handle.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM is supported as source")
        rate, channels = handle.getframerate(), handle.getnchannels()
        data = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    samples = data.astype(np.float32) / 32768.0
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, rate


def wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """float32 mono -> a PCM16 WAV file's bytes."""
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())
    return buffer.getvalue()


def resample_linear(samples: np.ndarray, ratio: float) -> np.ndarray:
    """Stretch by ``ratio`` (output length = input length x ratio) with linear interpolation.

    Good enough for perturbing speed and for making a 44.1 kHz copy: the benchmark measures speed, and the
    model sees the audio after the server has resampled it back to 16 kHz anyway.
    """
    n_out = max(1, round(samples.size * ratio))
    positions = np.arange(n_out, dtype=np.float64) / ratio
    return np.interp(positions, np.arange(samples.size), samples).astype(np.float32)


def load_pieces(source: Path) -> list[np.ndarray]:
    """Speech pieces from ``source``: the sentences listed in ``audio_meta.json`` plus whole speech files."""
    pieces: list[np.ndarray] = []
    meta_path = source / "audio_meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    for name, entry in sorted(meta.items()):
        sentences = entry.get("sentences_with_espeak_boundaries") if isinstance(entry, dict) else None
        if not sentences or not (source / name).is_file():
            continue
        samples, rate = read_wav(source / name)
        if rate != SAMPLE_RATE:
            continue
        for sentence in sentences:
            start = int(float(sentence["start_s"]) * rate)
            end = int(float(sentence["end_s"]) * rate)
            if end - start > rate // 2:
                pieces.append(samples[start:end].copy())
    for name in _WHOLE_FILES:
        path = source / name
        if path.is_file():
            samples, rate = read_wav(path)
            if rate == SAMPLE_RATE:
                pieces.append(samples)
    if not pieces:  # any other folder of speech: its short 16 kHz WAVs, whole (a generated corpus, say)
        for path in sorted(source.glob("*.wav"))[:64]:
            samples, rate = read_wav(path)
            if rate == SAMPLE_RATE and samples.size <= 30 * rate:
                pieces.append(samples)
    if not pieces:
        raise FileNotFoundError(f"no 16 kHz speech WAVs (or audio_meta.json sentences) under {source}")
    return pieces


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    return (rng.standard_normal(n) * (_NOISE_LSB / 32768.0)).astype(np.float32)


def _perturbed(rng: np.random.Generator, piece: np.ndarray) -> np.ndarray:
    rate = float(rng.uniform(0.9, 1.1))
    gain = float(rng.uniform(0.5, 1.0))
    return resample_linear(piece, rate) * gain


def _speech_run(
    rng: np.random.Generator, pieces: Sequence[np.ndarray], n_samples: int, pause_s: tuple[float, float]
) -> np.ndarray:
    """Perturbed pieces separated by noise-floor pauses, cut to exactly ``n_samples``."""
    parts: list[np.ndarray] = [_noise(rng, int(rng.uniform(0.1, 0.4) * SAMPLE_RATE))]
    total = parts[0].size
    while total < n_samples:
        piece = _perturbed(rng, pieces[int(rng.integers(len(pieces)))])
        pause = _noise(rng, int(rng.uniform(*pause_s) * SAMPLE_RATE))
        parts.extend((piece + _noise(rng, piece.size), pause))
        total += piece.size + pause.size
    out = np.concatenate(parts)[:n_samples]
    fade = min(160, out.size)  # 10 ms fade-out so a cut mid-word does not click
    out[out.size - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return np.clip(out, -1.0, 1.0)


def make_utterance(rng: np.random.Generator, pieces: Sequence[np.ndarray], duration_s: float) -> np.ndarray:
    """One utterance of ``duration_s`` seconds: a sentence or a few, short pauses."""
    return _speech_run(rng, pieces, int(duration_s * SAMPLE_RATE), (0.15, 0.6))


def make_long(rng: np.random.Generator, pieces: Sequence[np.ndarray], duration_s: float) -> np.ndarray:
    """A meeting-like recording: sentences with pauses of 0.3-3 s."""
    return _speech_run(rng, pieces, int(duration_s * SAMPLE_RATE), (0.3, 3.0))


def long_recording(source: Path, duration_s: float, seed: int = 7) -> np.ndarray:
    """A long recording generated in memory (the 2-hour memory test builds its audio this way)."""
    return make_long(np.random.default_rng(seed), load_pieces(source), duration_s)


def encode_mp3(samples: np.ndarray, rate: int = SAMPLE_RATE, out_rate: int = MP3_RATE) -> bytes:
    """16 kHz float32 -> 44.1 kHz mono MP3 bytes (soundfile's libsndfile+LAME, else PyAV)."""
    upsampled = resample_linear(samples, out_rate / rate)
    try:
        import soundfile

        buffer = io.BytesIO()
        soundfile.write(buffer, upsampled, out_rate, format="MP3")
        return buffer.getvalue()
    except (ImportError, TypeError, ValueError, RuntimeError) as exc:  # no MP3 in this libsndfile
        log.debug("soundfile MP3 unavailable (%s); using PyAV", exc)
    return _encode_mp3_av(upsampled, out_rate)


def _encode_mp3_av(samples: np.ndarray, rate: int) -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = 64000
        pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)
        step = 1152 * 16
        for start in range(0, pcm.size, step):
            frame = av.AudioFrame.from_ndarray(pcm[None, start : start + step], format="s16", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def _write_item(args: tuple[np.ndarray, Path, str, tuple[str, ...]]) -> dict[str, str]:
    samples, out, stem, formats = args
    files: dict[str, str] = {}
    if "wav" in formats:
        (out / f"{stem}.wav").write_bytes(wav_bytes(samples))
        files["wav"] = f"{stem}.wav"
    if "mp3" in formats:
        (out / f"{stem}.mp3").write_bytes(encode_mp3(samples))
        files["mp3"] = f"{stem}.mp3"
    return files


def build_corpus(source: Path, out: Path, spec: CorpusSpec = CorpusSpec()) -> list[CorpusItem]:
    """Generate the corpus into ``out`` and write ``out/corpus.json``; returns the items."""
    out.mkdir(parents=True, exist_ok=True)
    pieces = load_pieces(source)
    rng = np.random.default_rng(spec.seed)
    jobs: list[tuple[str, str, float, tuple[str, ...], np.ndarray]] = []
    for index in range(spec.utterances):
        duration = round(float(rng.uniform(spec.utt_min_s, spec.utt_max_s)), 3)
        jobs.append((f"utt{index:04d}", "utt", duration, spec.formats, make_utterance(rng, pieces, duration)))
    for index in range(spec.long_count):
        minutes = float(rng.uniform(spec.long_min_minutes, spec.long_max_minutes))
        duration = round(minutes * 60.0, 3)
        jobs.append(
            (f"long{index:02d}", "long", duration, spec.long_formats, make_long(rng, pieces, duration))
        )
    args = [(samples, out, stem, formats) for stem, _, _, formats, samples in jobs]
    if spec.workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(spec.workers) as pool:
            written = list(pool.map(_write_item, args, chunksize=8))
    else:
        written = [_write_item(a) for a in args]
    items = [
        CorpusItem(id=stem, kind=kind, duration_s=duration, files=files)
        for (stem, kind, duration, _, _), files in zip(jobs, written, strict=True)
    ]
    manifest = {"spec": asdict(spec), "source": str(source), "items": [asdict(item) for item in items]}
    (out / "corpus.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    log.info("corpus: %d utterances, %d long recordings -> %s", spec.utterances, spec.long_count, out)
    return items


def load_manifest(corpus_dir: Path) -> list[CorpusItem]:
    """The items of a generated corpus."""
    manifest = json.loads((corpus_dir / "corpus.json").read_text(encoding="utf-8"))
    return [CorpusItem(**item) for item in manifest["items"]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder of 16 kHz WAVs (+ audio_meta.json)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=CorpusSpec.seed)
    parser.add_argument("--utterances", type=int, default=CorpusSpec.utterances)
    parser.add_argument("--utt-min-s", type=float, default=CorpusSpec.utt_min_s)
    parser.add_argument("--utt-max-s", type=float, default=CorpusSpec.utt_max_s)
    parser.add_argument("--long", type=int, default=CorpusSpec.long_count, help="number of long recordings")
    parser.add_argument("--long-min", type=float, default=CorpusSpec.long_min_minutes, help="minutes")
    parser.add_argument("--long-max", type=float, default=CorpusSpec.long_max_minutes, help="minutes")
    parser.add_argument("--formats", default="wav,mp3", help="formats of the utterances")
    parser.add_argument("--long-formats", default="wav", help="formats of the long recordings")
    parser.add_argument("--workers", type=int, default=CorpusSpec.workers)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = CorpusSpec(
        seed=args.seed,
        utterances=args.utterances,
        utt_min_s=args.utt_min_s,
        utt_max_s=args.utt_max_s,
        long_count=args.long,
        long_min_minutes=args.long_min,
        long_max_minutes=max(args.long_min, args.long_max),
        formats=tuple(f for f in args.formats.split(",") if f),
        long_formats=tuple(f for f in args.long_formats.split(",") if f),
        workers=args.workers,
    )
    items = build_corpus(args.source, args.out, spec)
    total = sum(item.duration_s for item in items)
    print(f"wrote {len(items)} recordings, {total / 3600:.2f} h of audio, to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
