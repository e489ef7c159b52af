"""The corpus is deterministic, real speech, in the promised formats and lengths."""

from __future__ import annotations

import hashlib
import io
import wave
from pathlib import Path

import numpy as np
import pytest

from bench.corpus import CorpusSpec, build_corpus, load_manifest, load_pieces, long_recording, read_wav

SPEC = CorpusSpec(
    seed=5,
    utterances=3,
    utt_min_s=2.0,
    utt_max_s=4.0,
    long_count=1,
    long_min_minutes=0.2,
    long_max_minutes=0.25,
    formats=("wav", "mp3"),
    long_formats=("wav",),
    workers=1,
)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def source(parity_dir: Path) -> Path:
    return parity_dir / "paraformer" / "audio"


def test_same_seed_same_bytes_other_seed_other_audio(source: Path, tmp_path: Path) -> None:
    build_corpus(source, tmp_path / "a", SPEC)
    build_corpus(source, tmp_path / "b", SPEC)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    build_corpus(source, tmp_path / "c", CorpusSpec(**{**vars(SPEC), "seed": 6}))
    a, c = read_wav(tmp_path / "a" / "utt0000.wav")[0], read_wav(tmp_path / "c" / "utt0000.wav")[0]
    assert a.size != c.size or not np.array_equal(a, c)


def test_items_have_the_promised_formats_and_lengths(source: Path, tmp_path: Path) -> None:
    items = build_corpus(source, tmp_path, SPEC)
    assert [i.id for i in load_manifest(tmp_path)] == [i.id for i in items]
    utts = [i for i in items if i.kind == "utt"]
    longs = [i for i in items if i.kind == "long"]
    assert len(utts) == 3 and len(longs) == 1
    for item in utts:
        assert SPEC.utt_min_s <= item.duration_s <= SPEC.utt_max_s
        assert set(item.files) == {"wav", "mp3"}
        with wave.open(str(tmp_path / item.files["wav"]), "rb") as handle:
            assert (handle.getframerate(), handle.getnchannels(), handle.getsampwidth()) == (16000, 1, 2)
            assert handle.getnframes() == int(item.duration_s * 16000)
        soundfile = pytest.importorskip("soundfile")
        decoded, rate = soundfile.read(io.BytesIO((tmp_path / item.files["mp3"]).read_bytes()))
        assert rate == 44100
        assert abs(decoded.shape[0] / rate - item.duration_s) < 0.2  # MP3 frames pad the end a little
    assert 12.0 <= longs[0].duration_s <= 15.0 and set(longs[0].files) == {"wav"}


def test_audio_is_speech_not_silence(source: Path, tmp_path: Path) -> None:
    build_corpus(source, tmp_path, SPEC)
    samples = read_wav(tmp_path / "utt0001.wav")[0]
    frames = samples[: samples.size // 400 * 400].reshape(-1, 400)
    rms = np.sqrt((frames**2).mean(axis=1))
    # Speech: loud frames well above the -72 dBFS noise floor, and quiet pauses too.
    assert rms.max() > 0.02 and np.quantile(rms, 0.1) < 0.01


def test_pieces_come_from_the_meta_sentences(source: Path) -> None:
    pieces = load_pieces(source)
    assert len(pieces) >= 12 + 3  # 12 sentences of long_16k.wav + 3 whole files
    assert all(p.dtype == np.float32 and p.size > 8000 for p in pieces)


def test_long_recording_in_memory(source: Path) -> None:
    samples = long_recording(source, 30.0, seed=1)
    assert samples.size == 30 * 16000 and samples.dtype == np.float32
    assert np.array_equal(samples, long_recording(source, 30.0, seed=1))
