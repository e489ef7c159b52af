"""The engine face end to end on CPU: real models from the parity folders, real audio, real batching."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from asr_engine.engine import Engine, EngineConfig
from asr_engine.errors import AudioDecodeError, AudioTooLongError, InvalidOptionsError
from asr_engine.scheduler import SchedulerConfig
from asr_engine.types import AudioFormat, Hotword, TranscribeOptions

RAW = TranscribeOptions(itn=False, punctuation=False, vad=False)


@pytest.fixture(scope="module")
def paraformer_dir(parity_dir: Path) -> Path:
    return parity_dir / "paraformer"


@pytest.fixture(scope="module")
async def engine(paraformer_dir: Path):  # type: ignore[no-untyped-def]
    eng = Engine.load(
        paraformer_dir / "model",
        device="cpu",
        config=EngineConfig(scheduler=SchedulerConfig(max_wait_ms=30)),
    )
    await eng.start()
    yield eng
    await eng.close()


def expected_text(family_dir: Path, audio: str, timestamps: bool = False) -> dict:
    cases = json.loads((family_dir / "expected" / "expected.json").read_text())["cases"]
    for case in cases:
        kwargs = case.get("generate_kwargs", {})
        if case.get("input") == f"audio/{audio}" and kwargs == {"output_timestamp": timestamps}:
            return case["result"][0]
    raise LookupError(audio)


@pytest.mark.parametrize("audio", ["en_16k.wav", "zh_16k.wav", "en_44k1_stereo.flac", "en_8k.wav"])
async def test_transcribe_equals_funasr(engine: Engine, paraformer_dir: Path, audio: str) -> None:
    data = (paraformer_dir / "audio" / audio).read_bytes()
    result = await engine.transcribe(data, RAW)
    assert result.text_raw == expected_text(paraformer_dir, audio)["text"]


async def test_concurrent_requests_get_their_single_results(engine: Engine, paraformer_dir: Path) -> None:
    names = ["en_16k.wav", "zh_16k.wav", "en2_16k.wav", "en_8k.wav", "short_0p3s_16k.wav"]
    blobs = [(paraformer_dir / "audio" / n).read_bytes() for n in names]
    alone = [await engine.transcribe(b, RAW) for b in blobs]
    batches_before = engine.scheduler.stats.batches
    together = await asyncio.gather(*(engine.transcribe(b, RAW) for b in blobs))
    assert [t.text_raw for t in together] == [a.text_raw for a in alone]
    # They really shared batches.
    assert engine.scheduler.stats.batches - batches_before < len(names)
    # Every batch's device-thread stages were timed (CPU: features and the decode itself; no sync wait).
    clock = engine.stage_clock
    assert clock.batches == engine.scheduler.stats.batches
    assert clock.mean_ms("features") > 0 and clock.mean_ms("launch") > 0
    assert "device thread per batch features=" in engine.device_summary()


async def test_word_timestamps_are_funasr_timestamps(engine: Engine, paraformer_dir: Path) -> None:
    data = (paraformer_dir / "audio" / "en_16k.wav").read_bytes()
    result = await engine.transcribe(
        data, TranscribeOptions(itn=False, punctuation=False, vad=False, word_timestamps=True)
    )
    expected = expected_text(paraformer_dir, "en_16k.wav", timestamps=True)
    words = [w for s in result.segments for w in s.words]
    assert [[w.start_ms, w.end_ms] for w in words] == expected["timestamp"]
    assert [w.text for w in words] == expected["text"].split()


async def test_long_audio_is_segmented_by_vad(engine: Engine, paraformer_dir: Path) -> None:
    data = (paraformer_dir / "audio" / "long_16k.wav").read_bytes()
    result = await engine.transcribe(data, TranscribeOptions(itn=False, punctuation=False))
    meta = json.loads((paraformer_dir / "audio" / "audio_meta.json").read_text())
    assert result.duration_ms > 60_000
    assert 6 <= len(result.segments) <= 24, meta
    for seg in result.segments:
        assert 0 <= seg.start_ms < seg.end_ms <= result.duration_ms
        assert seg.end_ms - seg.start_ms <= engine.config.max_segment_ms


async def test_punctuation_and_itn_are_applied_after_decoding(engine: Engine, paraformer_dir: Path) -> None:
    data = (paraformer_dir / "audio" / "zh_16k.wav").read_bytes()
    plain = await engine.transcribe(data, RAW)
    full = await engine.transcribe(data, TranscribeOptions(vad=False))
    assert full.segments[0].text_raw == plain.segments[0].text_raw
    assert full.text.endswith(("。", "."))
    assert full.text != plain.text_raw


async def test_bad_audio_raises_typed_errors(engine: Engine) -> None:
    with pytest.raises(AudioDecodeError):
        await engine.transcribe(b"", RAW)
    with pytest.raises(AudioDecodeError):
        await engine.transcribe(np.random.default_rng(0).bytes(5000), RAW)
    with pytest.raises(InvalidOptionsError):
        await engine.transcribe(b"\x00\x00" * 100, RAW, audio_format=AudioFormat(encoding="linear16"))


async def test_duration_limit(engine: Engine, paraformer_dir: Path) -> None:
    data = (paraformer_dir / "audio" / "zh_16k.wav").read_bytes()
    with pytest.raises(AudioTooLongError):
        await engine.transcribe(data, RAW, max_duration_ms=1000)


def _pcm(path: Path) -> tuple[bytes, int]:
    with wave.open(io.BytesIO(path.read_bytes())) as wav:
        return wav.readframes(wav.getnframes()), wav.getframerate()


async def test_live_stream_with_odd_chunks_ends_with_the_offline_text(
    engine: Engine, paraformer_dir: Path
) -> None:
    pcm, rate = _pcm(paraformer_dir / "audio" / "en_16k.wav")
    offline = await engine.transcribe((paraformer_dir / "audio" / "en_16k.wav").read_bytes(), RAW)
    session = engine.open_stream(
        RAW, audio_format=AudioFormat(encoding="linear16", sample_rate_hz=rate, channels=1)
    )
    events = []
    position = 0
    for size in [1, 3333, 7, 12001, 4095] * 40:
        if position >= len(pcm):
            break
        events += await session.feed(pcm[position : position + size])
        position += size
    final_events, transcript = await session.finish()
    events += final_events
    finals = [e for e in events if e.kind == "final"]
    assert finals, events
    # The stream cuts the padding the offline path keeps, so compare words, not every character.
    assert set(transcript.text_raw.split()) & set(offline.text_raw.split())
    assert transcript.duration_ms == pytest.approx(offline.duration_ms, abs=1)


async def test_upload_stream_equals_unary(engine: Engine, paraformer_dir: Path) -> None:
    data = (paraformer_dir / "audio" / "en_44k1_stereo.flac").read_bytes()
    session = engine.open_stream(RAW)
    for i in range(0, len(data), 1001):
        assert await session.feed(data[i : i + 1001]) == []
    events, transcript = await session.finish()
    unary = await engine.transcribe(data, RAW)
    assert transcript.text_raw == unary.text_raw
    assert [e.kind for e in events] == ["final"] * len(transcript.segments)


async def test_hotwords_on_a_model_without_biasing_are_reported(engine: Engine, paraformer_dir: Path) -> None:
    data = (paraformer_dir / "audio" / "en_16k.wav").read_bytes()
    result = await engine.transcribe(
        data, TranscribeOptions(vad=False, hotwords=(Hotword(phrase="lingting"),))
    )
    assert result.applied_hotwords == ()
    assert any("hotword" in w for w in result.warnings)


def test_cli_no_vad_prints_funasr_text(paraformer_dir: Path) -> None:
    audio = paraformer_dir / "audio" / "zh_16k.wav"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "asr_engine",
            "transcribe",
            "--model",
            str(paraformer_dir / "model"),
            "--device",
            "cpu",
            "--no-vad",
            "--no-itn",
            "--no-punc",
            "--timestamps",
            str(audio),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    record = json.loads(out.stdout.strip().splitlines()[-1])
    expected = expected_text(paraformer_dir, "zh_16k.wav", timestamps=True)
    assert record["text"] == expected["text"]
    words = [w for s in record["segments"] for w in s["words"]]
    assert [[w["start_ms"], w["end_ms"]] for w in words] == expected["timestamp"]


async def test_live_stream_with_vad_emits_finals_as_sentences_end(
    engine: Engine, paraformer_dir: Path
) -> None:
    pcm, rate = _pcm(paraformer_dir / "audio" / "long_16k.wav")
    options = TranscribeOptions(itn=False, punctuation=False)
    session = engine.open_stream(
        options, audio_format=AudioFormat(encoding="linear16", sample_rate_hz=rate, channels=1)
    )
    finals_before_end = 0
    interims = 0
    for i in range(0, len(pcm), 6400):  # 200 ms chunks
        for event in await session.feed(pcm[i : i + 6400]):
            finals_before_end += event.kind == "final"
            interims += event.kind == "interim"
    _events, transcript = await session.finish()
    assert finals_before_end >= 6  # sentences are closed while the stream is still running
    assert interims >= 1
    starts = [s.start_ms for s in transcript.segments]
    assert starts == sorted(starts)
    assert all(s.end_ms - s.start_ms <= engine.config.max_segment_ms for s in transcript.segments)


async def test_sensevoice_hotwords_through_the_engine(parity_dir: Path) -> None:
    family = parity_dir / "sensevoice"
    eng = Engine.load(family / "model", device="cpu")
    await eng.start()
    try:
        data = (family / "audio" / "en_16k.wav").read_bytes()
        plain = await eng.transcribe(data, RAW)
        hotwords = (Hotword(phrase="谢谢"),)
        boosted = await eng.transcribe(
            data, TranscribeOptions(itn=False, punctuation=False, vad=False, hotwords=hotwords)
        )
        assert "谢谢" not in plain.text
        assert "谢谢" in boosted.text
        assert [h.phrase for h in boosted.applied_hotwords] == ["谢谢"]
        assert eng.models[0].hotword_mode == "context_graph"
    finally:
        await eng.close()
