"""StreamResampler: chunked output equals one-shot resample(); live non-16 kHz streams use it."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest

from asr_engine.engine import BUNDLED_DIR, Engine
from asr_engine.resample import StreamResampler, resample
from asr_engine.types import AudioFormat, TranscribeOptions

SAMPLES = BUNDLED_DIR / "lingting-mini" / "samples"
RAW = TranscribeOptions(itn=False, punctuation=False, vad=False)
# Float32 rounding of the convolution (its summation order depends on the input length), far below
# the 1/32768 step of 16-bit audio; the old per-chunk resampling was off by ~1e-2 at chunk edges.
TOLERANCE = 1e-6


def _speech() -> np.ndarray:
    with wave.open(str(SAMPLES / "en_1.wav")) as wav:
        assert wav.getframerate() == 16000 and wav.getnchannels() == 1
        ints = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return ints.astype(np.float32) / 32768


def _chunked(resampler: StreamResampler, signal: np.ndarray, sizes: list[int]) -> np.ndarray:
    out = []
    position = 0
    for size in sizes:
        out.append(resampler.process(signal[position : position + size]))
        position += size
    assert position >= signal.size
    out.append(resampler.flush())
    return np.concatenate(out)


def _random_sizes(rng: np.random.Generator, total: int, high: int) -> list[int]:
    sizes: list[int] = []
    while sum(sizes) < total:
        sizes.append(int(rng.integers(0, high + 1)))  # empty chunks too
    return sizes


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("high", [5, 300, 20000])  # chunks below the filter length, around it, far above
def test_chunked_output_equals_one_shot(rate: int, high: int) -> None:
    rng = np.random.default_rng(rate + high)
    # Real speech taken to the stream's rate.
    seconds = 0.25 if high < 10 else 2.0  # thousands of tiny chunks are slow to feed, not to check
    speech = _speech()[: int(16000 * seconds)]
    signal = resample(speech, 16000, rate)
    signal = signal[: signal.size - int(rng.integers(0, 97))]  # a length that is no whole filter block
    expected = resample(signal, rate, 16000)
    for trial in range(3):
        got = _chunked(StreamResampler(rate, 16000), signal, _random_sizes(rng, signal.size, high))
        assert got.dtype == np.float32 and got.shape == expected.shape, (trial, got.shape, expected.shape)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


def test_per_chunk_resampling_would_not_pass() -> None:
    """The check above can fail: resampling each chunk alone (the old way) is far off and too long."""
    signal = resample(_speech()[:16000], 16000, 44100)
    pieces = [resample(signal[i : i + 1000], 44100, 16000) for i in range(0, signal.size, 1000)]
    naive = np.concatenate(pieces)
    expected = resample(signal, 44100, 16000)
    assert naive.size != expected.size or np.abs(naive - expected).max() > 1e-3


def test_coprime_rates_use_the_sparse_form_and_still_match() -> None:
    rng = np.random.default_rng(7)
    signal = rng.normal(0, 0.3, size=44101 * 2 + 13).astype(np.float32)
    expected = resample(signal, 44101, 16000)
    got = _chunked(StreamResampler(44101, 16000), signal, _random_sizes(rng, signal.size, 9000))
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


def test_edges() -> None:
    same = StreamResampler(16000, 16000)
    chunk = np.arange(5, dtype=np.float32)
    assert np.array_equal(same.process(chunk), chunk) and same.flush().size == 0
    empty = StreamResampler(8000, 16000)
    assert empty.process(np.zeros(0, dtype=np.float32)).size == 0
    assert empty.flush().size == 0
    tiny = StreamResampler(48000, 16000)
    assert tiny.process(np.ones(1, dtype=np.float32)).size == 0  # waits for the filter's right side
    assert np.allclose(tiny.flush(), resample(np.ones(1, dtype=np.float32), 48000, 16000), atol=TOLERANCE)
    assert tiny.flush().size == 0
    with pytest.raises(RuntimeError):
        tiny.process(np.ones(3, dtype=np.float32))


@pytest.fixture(scope="module")
async def engine():  # type: ignore[no-untyped-def]
    eng = Engine.load(device="cpu")
    await eng.start()
    yield eng
    await eng.close()


def _pcm16(signal: np.ndarray) -> bytes:
    return (np.clip(signal, -1, 32767 / 32768) * 32768).round().astype("<i2").tobytes()


async def test_live_44k1_stream_in_odd_chunks_equals_the_offline_result(engine: Engine) -> None:
    """A live LINEAR16 stream at 44.1 kHz, cut anywhere, gives the unary call's text and duration."""
    sample = json.loads((SAMPLES / "samples.json").read_text(encoding="utf-8"))[1]
    with wave.open(str(SAMPLES / sample["file"])) as wav:
        ints = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    pcm = _pcm16(resample(ints.astype(np.float32) / 32768, 16000, 44100))
    audio_format = AudioFormat(encoding="linear16", sample_rate_hz=44100, channels=1)
    offline = await engine.transcribe(pcm, RAW, audio_format=audio_format)
    assert offline.text_raw.strip()
    session = engine.open_stream(RAW, audio_format=audio_format)
    position = 0
    rng = np.random.default_rng(3)
    while position < len(pcm):
        size = int(rng.integers(1, 3000))
        await session.feed(pcm[position : position + size])
        position += size
    _events, transcript = await session.finish()
    assert transcript.duration_ms == offline.duration_ms
    assert transcript.text_raw == offline.text_raw
