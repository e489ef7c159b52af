"""BlockingEngine with the bundled model and its real sample clips: plain scripts, threads, misuse, close."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from asr_engine.blocking import BlockingEngine
from asr_engine.engine import BUNDLED_DIR, EngineConfig
from asr_engine.errors import AudioDecodeError
from asr_engine.scheduler import SchedulerConfig
from asr_engine.types import TranscribeOptions

SAMPLES_DIR = BUNDLED_DIR / "lingting-mini" / "samples"
SAMPLES = [
    s for s in json.loads((SAMPLES_DIR / "samples.json").read_text(encoding="utf-8")) if "text_itn" in s
]
ITN = TranscribeOptions(itn=True, punctuation=False, vad=False)
RAW = TranscribeOptions(itn=False, punctuation=False, vad=False)


def _audio(sample: dict) -> bytes:
    return (SAMPLES_DIR / sample["file"]).read_bytes()


def _loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "asr-blocking-loop"]


@pytest.fixture(scope="module")
def blocking():  # type: ignore[no-untyped-def]
    # A long batching window so that calls from several threads surely meet in one batch.
    config = EngineConfig(scheduler=SchedulerConfig(max_wait_ms=300))
    engine = BlockingEngine.load(device="cpu", config=config)
    yield engine
    engine.close()


def test_plain_script_calls_repeatedly(blocking: BlockingEngine) -> None:
    for _ in range(2):
        for sample in SAMPLES:
            assert blocking.transcribe(_audio(sample), ITN).text == sample["text_itn"]
    with pytest.raises(AudioDecodeError):
        blocking.transcribe(b"not audio at all", RAW)
    assert blocking.transcribe(_audio(SAMPLES[0]), RAW).text == SAMPLES[0]["text"]  # still serving


def test_threads_batch_together_and_each_gets_its_own_result(blocking: BlockingEngine) -> None:
    alone = {s["file"]: blocking.transcribe(_audio(s), RAW).text_raw for s in SAMPLES}
    jobs = [SAMPLES[i % len(SAMPLES)] for i in range(12)]
    results: dict[int, str] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def call(index: int) -> None:
        try:
            barrier.wait()
            results[index] = blocking.transcribe(_audio(jobs[index]), RAW).text_raw
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    stats = blocking.engine.scheduler.stats
    batches_before, items_before = stats.batches, stats.items
    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert [results[i] for i in range(len(jobs))] == [alone[job["file"]] for job in jobs]
    assert stats.items - items_before == len(jobs)
    assert stats.batches - batches_before < len(jobs)  # some calls shared a batch


def test_submit_returns_a_future(blocking: BlockingEngine) -> None:
    futures = [blocking.submit(_audio(s), ITN) for s in SAMPLES]
    assert [f.result(timeout=300).text for f in futures] == [s["text_itn"] for s in SAMPLES]


def test_calling_from_the_engines_own_loop_raises_instead_of_deadlocking(blocking: BlockingEngine) -> None:
    audio = _audio(SAMPLES[0])

    async def inside() -> str:
        try:
            blocking.transcribe(audio, RAW)
        except RuntimeError as exc:
            message = str(exc)
        else:
            raise AssertionError("transcribe returned on its own loop")
        # The way that works there:
        text = (await blocking.engine.transcribe(audio, RAW)).text
        return f"{message}|{text}"

    message, text = blocking.run(inside(), timeout_s=120).split("|")
    assert "own event loop" in message and "await" in message
    assert text == SAMPLES[0]["text"]


def test_a_stream_through_run(blocking: BlockingEngine) -> None:
    from asr_engine.types import AudioFormat

    sample = SAMPLES[1]
    data = _audio(sample)[44:]  # the canonical 44-byte header; PCM16 mono 16 kHz follows
    session = blocking.engine.open_stream(
        RAW, audio_format=AudioFormat(encoding="linear16", sample_rate_hz=16000, channels=1)
    )
    for i in range(0, len(data), 3200):
        blocking.run(session.feed(data[i : i + 3200]))
    _events, transcript = blocking.run(session.finish())
    assert transcript.text == sample["text"]


def test_close_stops_the_thread_and_refuses_later_calls() -> None:
    before = len(_loop_threads())
    with BlockingEngine.load(device="cpu") as engine:
        assert len(_loop_threads()) == before + 1
        assert engine.transcribe(_audio(SAMPLES[3]), ITN).text == SAMPLES[3]["text_itn"]
    assert engine.closed
    assert len(_loop_threads()) == before
    with pytest.raises(RuntimeError, match="closed"):
        engine.transcribe(_audio(SAMPLES[3]), ITN)
    engine.close()  # a second close is harmless


def test_cli_uses_it_for_several_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.wav"
    files = [SAMPLES_DIR / s["file"] for s in SAMPLES[:2]] + [missing]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "asr_engine",
            "transcribe",
            "--device",
            "cpu",
            "--no-punc",
            "--no-vad",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 1  # one file could not be read
    assert [r["file"] for r in records] == [str(f) for f in files]
    assert [r["text"] for r in records[:2]] == [s["text_itn"] for s in SAMPLES[:2]]
    assert "error" in records[2]
