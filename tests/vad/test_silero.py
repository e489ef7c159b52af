"""Silero VAD: our module against the package's TorchScript model, and segments of real speech."""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr_engine.vad.base import VadEvent, VoiceActivityDetector
from asr_engine.vad.silero import SileroVad
from asr_engine.vad.silero_model import CONTEXT_SAMPLES, WINDOW_SAMPLES, bundled_weights_path, load_silero_net
from asr_engine.vad.silero_segments import SileroSettings

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def speech(parity_dir: Path) -> np.ndarray:
    audio, rate = sf.read(str(parity_dir / "fsmn_vad" / "audio" / "long_16k.wav"), dtype="float32")
    assert rate == 16000
    return audio


@pytest.fixture(scope="module")
def sentences_ms(parity_dir: Path) -> list[tuple[int, int]]:
    meta = json.loads((parity_dir / "fsmn_vad" / "audio" / "audio_meta.json").read_text())
    spans = meta["long_16k.wav"]["sentences_with_espeak_boundaries"]
    return [(round(s["start_s"] * 1000), round(s["end_s"] * 1000)) for s in spans]


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad.load(device=CPU)


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def test_module_matches_package_torchscript(vad: SileroVad, speech: np.ndarray) -> None:
    """Window by window through silero's own JIT model (its internal context and state) vs one batch."""
    audio = speech[: 16000 * 12 + 300]  # speech and pauses; a partial last window
    ours = vad.speech_probs(audio)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(bundled_weights_path("jit")), map_location="cpu")
    scripted.reset_states()
    theirs = []
    with torch.inference_mode():
        for start in range(0, audio.size, WINDOW_SAMPLES):
            chunk = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
            piece = audio[start : start + WINDOW_SAMPLES]
            chunk[: piece.size] = piece
            theirs.append(scripted(torch.from_numpy(chunk)[None], 16000).item())
    assert ours.shape == (len(theirs),)
    np.testing.assert_allclose(ours, np.array(theirs), atol=1e-4, rtol=0)
    assert 0.2 < float(np.mean(ours > 0.5)) < 0.95  # real speech and real pauses


def test_safetensors_weights_load_strictly() -> None:
    net = load_silero_net(source="safetensors", device=CPU)
    window = torch.zeros(1, WINDOW_SAMPLES + CONTEXT_SAMPLES)
    probs, _ = net.decode(net.encode(window)[None])
    assert probs.shape == (1, 1) and float(probs) < 0.5


def test_blocks_and_batch_do_not_change_scores(speech: np.ndarray) -> None:
    small_blocks = SileroVad(load_silero_net(device=CPU), device=CPU, block_windows=37)
    audio_a, audio_b = speech[: 16000 * 5], speech[16000 * 20 : 16000 * 23 + 17]
    whole = small_blocks.speech_probs_batch([audio_a])[0]
    both = small_blocks.speech_probs_batch([audio_a, audio_b])
    big = SileroVad(small_blocks.net, device=CPU).speech_probs(audio_b)
    np.testing.assert_allclose(both[0], whole, atol=1e-5)
    np.testing.assert_allclose(both[1], big, atol=1e-5)


def test_finds_every_sentence(
    vad: SileroVad, speech: np.ndarray, sentences_ms: list[tuple[int, int]]
) -> None:
    """Default settings: each segment lies on one sentence; each sentence is covered by segments."""
    assert isinstance(vad, VoiceActivityDetector)
    segments = vad.segments(speech)
    assert segments == sorted(segments)
    for seg in segments:
        hits = [s for s in sentences_ms if _overlap(seg, s) > 0]
        assert len(hits) == 1, f"segment {seg} overlaps {hits}"
    for sentence in sentences_ms:
        covered = sum(_overlap(seg, sentence) for seg in segments)
        assert covered >= 0.85 * (sentence[1] - sentence[0]), sentence
    # Short pauses inside sentences (commas) split a few of them at silero's 100 ms minimum silence.
    assert 12 <= len(segments) <= 18


def test_one_segment_per_sentence_with_longer_min_silence(
    speech: np.ndarray, sentences_ms: list[tuple[int, int]], vad: SileroVad
) -> None:
    patient = SileroVad(vad.net, device=CPU, settings=SileroSettings(min_silence_ms=300))
    segments = patient.segments(speech)
    assert len(segments) == len(sentences_ms) == 12
    for seg, sentence in zip(segments, sentences_ms, strict=True):
        assert _overlap(seg, sentence) >= 0.9 * (sentence[1] - sentence[0])
        assert abs(seg[0] - sentence[0]) < 300 and abs(seg[1] - sentence[1]) < 400


def test_max_segment_cuts_long_segments(vad: SileroVad, speech: np.ndarray) -> None:
    whole = vad.segments(speech)
    cut = vad.segments(speech, max_segment_ms=3000)
    assert all(e - s <= 3000 for s, e in cut)
    assert len(cut) > len(whole)
    # Pieces tile the original segments: same first start and last end, no gaps inside a segment.
    for s, e in whole:
        pieces = [p for p in cut if p[0] >= s and p[1] <= e]
        assert pieces[0][0] == s and pieces[-1][1] == e
        assert all(a[1] >= b[0] for a, b in itertools.pairwise(pieces))


def test_stream_reports_the_offline_segments(vad: SileroVad, speech: np.ndarray) -> None:
    stream = vad.stream()
    events: list[VadEvent] = []
    for start in range(0, speech.size, 1600):  # 100 ms chunks
        events += stream.feed(speech[start : start + 1600])
    events += stream.finish()
    closed, open_start = [], None
    for ev in events:
        if ev.opens:
            assert open_start is None
            open_start = ev.start_ms
        else:
            start = ev.start_ms if ev.start_ms >= 0 else open_start
            assert start is not None
            closed.append((start, ev.end_ms))
            open_start = None
    assert open_start is None
    assert closed == vad.segments(speech)


def test_silence_gives_nothing(vad: SileroVad) -> None:
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(16000 * 2) * 8 / 32768).astype(np.float32)
    assert vad.segments(noise) == []
    assert vad.segments(np.zeros(0, dtype=np.float32)) == []
