"""Several device workers on one scheduler queue (``EngineConfig.device_workers``): the same results as one
worker, every worker really runs batches, out-of-memory splitting still works, ``close`` stops them all,
and (on a GPU) two workers on their own CUDA streams give one worker's token ids."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from asr_engine.engine import BUNDLED_DIR, Engine, EngineConfig
from asr_engine.errors import OverloadedError
from asr_engine.models.base import DecodeRequest
from asr_engine.scheduler import BatchScheduler, SchedulerConfig
from asr_engine.types import Hotword, TranscribeOptions, Transcript
from tests.models.conftest import file_samples

RAW = TranscribeOptions(itn=False, punctuation=False, vad=False)
BUNDLED = BUNDLED_DIR / "lingting-mini"
SAMPLES = json.loads((BUNDLED / "samples" / "samples.json").read_text(encoding="utf-8"))
PARITY_NAMES = ("en_16k.wav", "zh_16k.wav", "en2_16k.wav", "en_8k.wav", "short_0p3s_16k.wav")


def _result(transcript: Transcript) -> tuple[object, ...]:
    """Everything of a transcript that the model decides (not the timing)."""
    return tuple((s.text_raw, s.words, s.language, s.tags, s.start_ms, s.end_ms) for s in transcript.segments)


async def _sequential_then_concurrent(
    engine: Engine, calls: Sequence[tuple[bytes, TranscribeOptions]], rounds: int = 3
) -> tuple[list[Transcript], list[list[Transcript]], list[int]]:
    """Start the engine, run ``calls`` one by one and then ``rounds`` times at once, close it.

    Also returns how many batches each worker ran meanwhile.
    """
    await engine.start()
    try:
        before = list(engine.scheduler.stats.worker_batches)
        alone = [await engine.transcribe(audio, options) for audio, options in calls]
        together = [
            list(await asyncio.gather(*(engine.transcribe(audio, options) for audio, options in calls)))
            for _ in range(rounds)
        ]
        after = engine.scheduler.stats.worker_batches
    finally:
        await engine.close()
    return alone, together, [a - b for a, b in zip(after, before, strict=True)]


def _two_worker_engine(model_dir: Path | None) -> Engine:
    # Two items per batch: every round is cut into several batches, so both workers get some.
    scheduler = SchedulerConfig(max_wait_ms=5, max_batch_items=2)
    return Engine.load(
        model_dir, device="cpu", config=EngineConfig(vad="none", scheduler=scheduler, device_workers=2)
    )


async def test_bundled_model_concurrent_equals_sequential() -> None:
    engine = _two_worker_engine(None)
    assert engine.scheduler.workers == 2
    calls = []
    for sample in SAMPLES:
        audio = (BUNDLED / "samples" / sample["file"]).read_bytes()
        words = tuple(Hotword(phrase=w, boost=sample["boost"]) for w in sample.get("hotwords", ()))
        calls.append((audio, TranscribeOptions(itn=False, punctuation=False, vad=False, hotwords=words)))
        calls.append(
            (audio, TranscribeOptions(itn=False, punctuation=False, vad=False, word_timestamps=True))
        )
    alone, rounds, ran = await _sequential_then_concurrent(engine, calls)
    # The reference texts the samples were kept for (the hotword clip needs its hotword).
    assert [t.text for t in alone[::2]] == [s["text"] for s in SAMPLES]
    for together in rounds:
        assert [_result(t) for t in together] == [_result(t) for t in alone]
    assert all(n > 0 for n in ran), ran
    assert sum(ran) >= len(calls) * (1 + len(rounds)) // 2


async def test_parity_paraformer_concurrent_equals_sequential(parity_dir: Path) -> None:
    family = parity_dir / "paraformer"
    engine = _two_worker_engine(family / "model")
    blobs = [(family / "audio" / n).read_bytes() for n in PARITY_NAMES]
    stamped = dataclasses.replace(RAW, word_timestamps=True)
    calls = [(b, RAW) for b in blobs] + [(b, stamped) for b in blobs]
    expected = json.loads((family / "expected" / "expected.json").read_text())["cases"]
    funasr = {
        c["input"]: c["result"][0]["text"]
        for c in expected
        if c.get("generate_kwargs", {}) == {"output_timestamp": False}
    }
    alone, rounds, ran = await _sequential_then_concurrent(engine, calls)
    for name, transcript in zip(PARITY_NAMES, alone, strict=False):
        if f"audio/{name}" in funasr:
            assert transcript.text_raw == funasr[f"audio/{name}"], name
    for together in rounds:
        assert [_result(t) for t in together] == [_result(t) for t in alone]
    assert all(n > 0 for n in ran), ran


class _Recorder:
    """A real batch function: remembers the thread of each batch, fails big ones as out of memory."""

    def __init__(self, oom_above: int | None = None, gate: threading.Event | None = None) -> None:
        self.oom_above = oom_above
        self.gate = gate
        self.threads: list[str] = []
        self.setup: dict[int, str] = {}
        self.started = 0

    def setup_worker(self, index: int) -> None:
        self.setup[index] = threading.current_thread().name

    def __call__(self, items: Sequence[np.ndarray]) -> list[float]:
        self.started += 1
        if self.gate is not None:
            assert self.gate.wait(10.0)
        if self.oom_above is not None and len(items) > self.oom_above:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        time.sleep(0.002)  # long enough for the other worker to take the next batch
        self.threads.append(threading.current_thread().name)
        return [float(x.sum()) for x in items]


async def test_out_of_memory_splits_on_each_worker() -> None:
    recorder = _Recorder(oom_above=2)
    scheduler: BatchScheduler[np.ndarray, float] = BatchScheduler(
        recorder,
        SchedulerConfig(max_batch_samples=100_000, max_batch_items=8, max_wait_ms=20),
        is_oom=lambda exc: "out of memory" in str(exc),
        workers=2,
        worker_setup=recorder.setup_worker,
    )
    await scheduler.start()
    try:
        items = [np.full(10 + i, i, dtype=np.float32) for i in range(32)]
        results = await asyncio.gather(*(scheduler.submit(x, len(x)) for x in items))
    finally:
        await scheduler.close()
    assert results == [float(x.sum()) for x in items]
    assert scheduler.stats.oom_splits >= 8  # four batches of eight, each split at least twice
    assert scheduler.stats.items == len(items)
    assert all(n > 0 for n in scheduler.stats.worker_batches), scheduler.stats.worker_batches
    # Each worker ran in its own thread, set up once there.
    assert sorted(recorder.setup) == [0, 1]
    assert set(recorder.threads) == set(recorder.setup.values())
    assert len(set(recorder.setup.values())) == 2


async def test_close_stops_every_worker_and_answers_every_caller() -> None:
    gate = threading.Event()
    recorder = _Recorder(gate=gate)
    scheduler: BatchScheduler[np.ndarray, float] = BatchScheduler(
        recorder,
        SchedulerConfig(max_batch_items=1, max_wait_ms=1),
        workers=2,
        worker_setup=recorder.setup_worker,
        name="closing",
    )
    await scheduler.start()
    futures = [scheduler.submit(np.ones(5, dtype=np.float32), 5) for _ in range(6)]
    for _ in range(500):  # both workers inside a batch, the rest still waiting
        if recorder.started >= 2:
            break
        await asyncio.sleep(0.01)
    assert recorder.started == 2
    threading.Timer(0.2, gate.set).start()  # the running batches end while close waits for them
    await scheduler.close()
    assert all(f.done() for f in futures)
    assert all(isinstance(f.exception(), OverloadedError) for f in futures)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("closing-device")]
    with pytest.raises(RuntimeError):
        scheduler.submit(np.ones(5, dtype=np.float32), 5)
    assert recorder.started == 2  # nothing ran after close


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BatchScheduler(lambda items: [], SchedulerConfig(), workers=0)


# ------------------------------------------------------------------------------------------------ GPU
@pytest.mark.gpu
@pytest.mark.parametrize("graphs", [False, True], ids=["eager", "graphs"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_two_cuda_workers_give_one_workers_token_ids(parity_dir: Path, graphs: bool, dtype: str) -> None:
    """Synchronous on purpose: the GPU machine may lack pytest-asyncio.

    One item per batch, so every batch has the shape it has alone and the ids must be identical: two
    workers overlap on their own streams (and share the graphs), one worker runs them one by one.
    """
    family = parity_dir / "paraformer"
    waves = [file_samples(family / "audio" / n) for n in (*PARITY_NAMES, "long_16k.wav")] * 4

    async def token_ids(workers: int) -> tuple[list[tuple[int, ...]], list[int]]:
        config = EngineConfig(
            vad="none",
            cuda_graphs=graphs,
            device_workers=workers,
            scheduler=SchedulerConfig(max_batch_items=1, max_wait_ms=1),
        )
        engine = Engine.load(family / "model", device="cuda", dtype=dtype, config=config)
        await engine.start()
        try:
            request = DecodeRequest(timestamps=True)
            hyps = await asyncio.gather(*(engine.submit(w, request) for w in waves))
            again = await asyncio.gather(*(engine.submit(w, request) for w in waves))
            assert [h.token_ids for h in again] == [h.token_ids for h in hyps]
            return [h.token_ids for h in hyps], list(engine.scheduler.stats.worker_batches)
        finally:
            await engine.close()

    one, _ = asyncio.run(token_ids(1))
    two, ran = asyncio.run(token_ids(2))
    assert two == one
    assert any(one)
    assert len(ran) == 2 and all(n > 0 for n in ran), ran
