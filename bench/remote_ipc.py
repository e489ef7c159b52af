"""What the front-end -> engine-process messaging costs per segment, without a model in the way.

A ``SegmentServer`` runs in a spawned process over an ``Engine`` whose recogniser answers at once with a
fixed hypothesis (so only framing, pickling, the arena and the event loop are measured); this process
drives it through a ``RemoteRecogniser`` with ``--concurrency`` segments in flight. Reported: segments per
second, and CPU microseconds per segment in the engine process's event-loop thread and in this client.
The engine's budget is the point: at ~2,700 requests/s it must stay well under 0.1 ms per segment.

    python -m bench.remote_ipc --segments 20000 --concurrency 64 --seconds 7.5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import tempfile
import time
from collections.abc import Awaitable
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import torch

from asr_engine.engine import Engine, EngineConfig
from asr_engine.models.base import DecodeRequest, Hypothesis
from asr_engine.postprocess import load_punctuator
from asr_engine.remote.arena import SharedArena
from asr_engine.remote.client import RemoteRecogniser
from asr_engine.remote.server import SegmentServer
from asr_engine.types import ModelInfo, Word
from bench.sysmon import cpu_seconds

__all__ = ["main"]

_HYP = Hypothesis(
    token_ids=tuple(range(100, 130)),
    text="the meeting is on march fifth at nine thirty in the morning in room four",
    language="en",
)


class _Instant:
    """A recogniser with no model: every segment's answer is ready at once."""

    def __init__(self, hypothesis: Hypothesis) -> None:
        self._hyp = hypothesis

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def recognise(self, samples: np.ndarray, request: DecodeRequest) -> Awaitable[Hypothesis]:
        future: asyncio.Future[Hypothesis] = asyncio.get_running_loop().create_future()
        future.set_result(self._hyp)
        return future


def _serve(socket_path: str, words: bool, ready: Connection) -> None:
    async def run() -> None:
        hyp = _HYP
        if words:
            hyp = Hypothesis(
                token_ids=_HYP.token_ids,
                text=_HYP.text,
                words=tuple(
                    Word(text=w, start_ms=i * 300, end_ms=i * 300 + 250)
                    for i, w in enumerate(_HYP.text.split())
                ),
            )
        info = ModelInfo(
            name="none", family="none", path="/none", languages=("en",), hotword_mode="none",
            word_timestamps=True, punctuation=True, itn=True, rich_tags=False, vad="none", device="cpu",
            dtype="float32",
        )  # fmt: skip
        engine = Engine(
            info, model_dir=Path("/none"), device=torch.device("cpu"), dtype=torch.float32,
            vad=None, vad_kind="none", punctuator=load_punctuator(None, torch.device("cpu")),
            config=EngineConfig(), recogniser=_Instant(hyp),
        )  # fmt: skip
        await engine.start()
        server = SegmentServer(engine)
        await server.listen(socket_path)
        ready.send("ready")
        while not server.connections:  # the client's connection, then until it leaves
            await asyncio.sleep(0.05)
        while server.connections:
            await asyncio.sleep(0.1)
        await server.close()

    asyncio.run(run())


async def _drive(
    socket_path: str, segments: int, concurrency: int, seconds: float, pid: int
) -> dict[str, float]:
    arena = SharedArena.create(Path(tempfile.gettempdir()) / f"lingting-ipc-{os.getpid()}", 64 << 20)
    client = RemoteRecogniser(socket_path, arena, name="bench")
    await client.start()
    samples = np.random.default_rng(0).standard_normal(int(16000 * seconds)).astype(np.float32) * 0.1
    request = DecodeRequest(language="en")
    for _ in range(200):  # warm-up
        await client.recognise(samples, request)
    left = segments

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await client.recognise(samples, request)

    server_before = cpu_seconds(f"{pid}/task/{pid}")
    client_before = time.thread_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    client_cpu = time.thread_time() - client_before
    server_cpu = cpu_seconds(f"{pid}/task/{pid}") - server_before
    await client.close()
    return {
        "segments": segments,
        "concurrency": concurrency,
        "segment_s": seconds,
        "segments_per_s": round(segments / wall, 1),
        "engine_loop_us_per_segment": round(server_cpu * 1e6 / segments, 1),
        "client_loop_us_per_segment": round(client_cpu * 1e6 / segments, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=7.5, help="audio per segment")
    parser.add_argument("--words", action="store_true", help="hypotheses carry word times")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="lingting-ipc-") as tmp:
        socket_path = str(Path(tmp) / "engine.sock")
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(target=_serve, args=(socket_path, args.words, writer))
        process.start()
        if not reader.poll(120):
            process.kill()
            raise SystemExit("the segment server did not start")
        reader.recv()
        assert process.pid is not None
        result = asyncio.run(_drive(socket_path, args.segments, args.concurrency, args.seconds, process.pid))
        process.join(10)
    result["words"] = args.words
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
