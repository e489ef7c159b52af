"""The engine split over a Unix socket and shared memory: a ``SegmentServer`` over the bundled model, and
``RemoteEngine`` front-ends talking to it, compared with the same engine used directly.

Both ends run in this process (the socket and the arena are real; the process split itself is tested
through the server in ``tests/service/test_multiproc.py``).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from asr_engine.engine import Engine
from asr_engine.remote.arena import GRAIN, ArenaAllocator, SharedArena
from asr_engine.remote.client import EngineProcessLostError
from asr_engine.remote.frontend import RemoteEngine, load_remote_engine
from asr_engine.remote.server import SegmentServer, load_served_engine
from asr_engine.types import AudioFormat, Hotword, TranscribeOptions, Transcript

SAMPLES = Path(__file__).resolve().parents[2] / "asr_engine" / "bundled" / "lingting-mini" / "samples"
CASES = json.loads((SAMPLES / "samples.json").read_text())


def _pcm(name: str) -> bytes:
    with wave.open(str(SAMPLES / name)) as w:
        return w.readframes(w.getnframes())


def _wav(pcm: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    return out.getvalue()


def _long_recording() -> bytes:
    """Every sample twice with a second of silence after each: ~40 s, so the VAD cuts it."""
    silence = b"\x00\x00" * 16000
    return _wav(b"".join(_pcm(c["file"]) + silence for c in CASES * 2))


def _options(case: dict) -> TranscribeOptions:
    hotwords = tuple(Hotword(phrase=p, boost=case.get("boost")) for p in case.get("hotwords", ()))
    return TranscribeOptions(language=case["language"], hotwords=hotwords, word_timestamps=True)


def _same(a: Transcript, b: Transcript) -> None:
    assert a.text == b.text and a.text_raw == b.text_raw
    assert a.segments == b.segments
    assert (a.language, a.model, a.applied_hotwords, a.warnings) == (
        b.language,
        b.model,
        b.applied_hotwords,
        b.warnings,
    )


@pytest.fixture(scope="module")
async def local() -> AsyncIterator[Engine]:
    engine = Engine.load(None, device="cpu")
    await engine.start()
    yield engine
    await engine.close()


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[SegmentServer, Path]]:
    engine = load_served_engine(None, device="cpu", dtype=None)
    await engine.start()
    server = SegmentServer(engine)
    path = tmp_path_factory.mktemp("sock") / "engine.sock"
    await server.listen(path)
    yield server, path
    await server.close()
    await engine.close()


def _arena_path() -> Path:
    return Path("/dev/shm") / f"lingting-test-{os.getpid()}-{secrets.token_hex(4)}"


async def _remote(
    socket_path: Path, arena_bytes: int, lost: list[str] | None = None, *, anonymous: bool = False
) -> RemoteEngine:
    engine = await asyncio.to_thread(
        load_remote_engine,
        socket_path,
        None if anonymous else _arena_path(),
        arena_bytes,
        name="test",
        on_lost=None if lost is None else (lambda: lost.append("lost")),
    )
    await engine.start()
    return engine


def test_allocator_first_fit_reuses_and_merges_freed_blocks() -> None:
    alloc = ArenaAllocator(10 * GRAIN)
    a, b, c = alloc.alloc(3 * GRAIN), alloc.alloc(1), alloc.alloc(4 * GRAIN)
    assert (a, b, c) == (0, 3 * GRAIN, 4 * GRAIN)
    assert alloc.alloc(3 * GRAIN) is None  # 2 grains left
    alloc.free(b, 1)  # out of order: results come back in any order
    alloc.free(a, 3 * GRAIN)  # merges with b's block: 4 grains at 0
    assert alloc.alloc(4 * GRAIN) == 0
    alloc.free(0, 4 * GRAIN)
    alloc.free(c, 4 * GRAIN)  # everything merges back into one block
    assert alloc.used == 0 and alloc.alloc(10 * GRAIN) == 0


def test_arena_is_shared_between_mappings_and_removed_by_its_owner() -> None:
    path = _arena_path()
    owner = SharedArena.create(path, 1 << 16)
    other = SharedArena.attach(path, 1 << 16)
    owner.array(512, 4)[:] = [1.0, 2.0, 3.0, 4.0]
    assert other.array(512, 4).tolist() == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError):
        other.array(1 << 16, 1)
    other.close()
    owner.close()
    assert not path.exists()


async def test_remote_engine_gives_the_local_engines_results(
    local: Engine, served: tuple[SegmentServer, Path]
) -> None:
    remote = await _remote(served[1], 16 << 20)
    answered = served[0].segments
    try:
        assert remote.models[0].name == local.models[0].name
        assert remote.models[0].device == local.models[0].device
        for case in CASES:
            audio = (SAMPLES / case["file"]).read_bytes()
            mine, theirs = await asyncio.gather(
                remote.transcribe(audio, _options(case)), local.transcribe(audio, _options(case))
            )
            _same(mine, theirs)
            if "text_itn" in case:
                assert mine.text.rstrip(".。") == case["text_itn"].rstrip(".")
        long = _long_recording()
        mine, theirs = await remote.transcribe(long), await local.transcribe(long)
        assert len(mine.segments) >= 5
        _same(mine, theirs)
        # A live stream: VAD endpointing in the front-end, its segments through the engine process.
        pcm = _pcm("zh_1.wav") + b"\x00\x00" * 16000 + _pcm("en_1.wav") + b"\x00\x00" * 8000
        results = []
        for engine in (remote, local):
            stream = engine.open_stream(
                TranscribeOptions(),
                audio_format=AudioFormat(encoding="linear16", sample_rate_hz=16000, channels=1),
            )
            events = []
            for start in range(0, len(pcm), 6400):
                events += await stream.feed(pcm[start : start + 6400])
            last, transcript = await stream.finish()
            results.append(([e.segment for e in events + last if e.kind == "final"], transcript))
        assert results[0][0] == results[1][0] and len(results[0][0]) == 2
        _same(results[0][1], results[1][1])
        assert served[0].segments - answered >= len(CASES) + len(mine.segments) + 2
        # The stop log's line: each answered segment spent a positive time in the engine process.
        assert served[0].served_s > 0
        count, rest = served[0].summary().split(" segments, ")
        assert int(count) == served[0].segments and float(rest.split(" ms")[0]) > 0
    finally:
        await remote.close()


async def test_a_full_arena_makes_segments_wait_and_an_oversized_one_travels_inline(
    local: Engine, served: tuple[SegmentServer, Path]
) -> None:
    # 3 s of samples fit: the 5 s sample goes inline, and concurrent requests queue for space.
    remote = await _remote(served[1], 3 * 16000 * 4)
    try:
        blobs = [(SAMPLES / c["file"]).read_bytes() for c in CASES] * 3
        mine = await asyncio.gather(*(remote.transcribe(b) for b in blobs))
        theirs = [await local.transcribe(b) for b in blobs[: len(CASES)]]
        for i, transcript in enumerate(mine):
            _same(transcript, theirs[i % len(CASES)])
        recogniser = remote.recogniser
        assert recogniser.inline == 3 and recogniser.waited > 0 and recogniser.in_flight == 0
    finally:
        await remote.close()


async def test_losing_the_engine_fails_waiting_and_later_segments(local: Engine, tmp_path: Path) -> None:
    engine = load_served_engine(None, device="cpu", dtype=None)
    await engine.start()
    server = SegmentServer(engine)
    await server.listen(tmp_path / "engine.sock")
    lost: list[str] = []
    remote = await _remote(tmp_path / "engine.sock", 1 << 20, lost)
    arena = remote.recogniser._arena.path
    try:
        audio = (SAMPLES / "zh_1.wav").read_bytes()
        assert (await remote.transcribe(audio)).text
        pending = asyncio.ensure_future(remote.transcribe(audio))
        await asyncio.sleep(0)
        await server.close()
        with pytest.raises(EngineProcessLostError):
            await pending
        with pytest.raises(EngineProcessLostError):
            await remote.transcribe(audio)
        assert lost == ["lost"]
    finally:
        await remote.close()
        await engine.close()
    assert not arena.exists()


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="needs memfd_create (Linux)")
def test_an_anonymous_arena_is_shared_through_its_proc_path() -> None:
    """The fallback when /dev/shm is too small: another mapping of the /proc path sees the same bytes."""
    arena = SharedArena.create_anonymous(1 << 20, "test-arena")
    try:
        assert str(arena.path).startswith(f"/proc/{os.getpid()}/fd/")
        other = SharedArena.attach(arena.path, arena.size)
        try:
            arena.array(4096, 8)[:] = np.arange(8, dtype=np.float32)
            assert other.array(4096, 8).tolist() == list(range(8))
        finally:
            other.close()
    finally:
        arena.close()


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="needs memfd_create (Linux)")
async def test_remote_engine_over_an_anonymous_arena(
    local: Engine, served: tuple[SegmentServer, Path]
) -> None:
    """A front-end whose arena is a memory file (no room in /dev/shm) gets the local engine's results."""
    remote = await _remote(served[1], 4 << 20, anonymous=True)
    try:
        case = CASES[0]
        audio = (SAMPLES / case["file"]).read_bytes()
        mine, theirs = await asyncio.gather(
            remote.transcribe(audio, _options(case)), local.transcribe(audio, _options(case))
        )
        _same(mine, theirs)
    finally:
        await remote.close()
