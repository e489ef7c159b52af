"""The engine process's side: segments from every front-end into one ``Engine``'s batcher.

Each front-end connects once over a Unix domain socket, says which arena file it writes into, and gets
the served model's ``ModelInfo`` back. From then on every ``SEGMENT`` message names a block of that
arena; the block is read in place (a view, no copy on a CPU device) and submitted to the engine's
scheduler, and the ``Hypothesis`` goes back when the batch is done. The event loop does only this, so
the device threads get the GIL nearly to themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np

from asr_engine.engine import Engine, EngineConfig
from asr_engine.loop_lag import LoopLagProbe
from asr_engine.models.base import Hypothesis
from asr_engine.remote.arena import SharedArena
from asr_engine.remote.wire import (
    ERROR,
    HELLO,
    RESULT,
    SEGMENT,
    WELCOME,
    FramedProtocol,
    decode_request,
    encode_error,
    encode_hypothesis,
)

__all__ = ["SegmentServer", "load_served_engine"]

log = logging.getLogger(__name__)


class SegmentServer:
    """Serves one started ``Engine`` to front-end processes on a Unix socket at ``path``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.segments = 0  # answered, for the log
        self.served_s = 0.0  # summed over answered segments: arrival to reply, for the log
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_FrontendConnection] = set()
        self.loop_lag = LoopLagProbe()  # runs while listening; its figures go into the stop log

    def summary(self) -> str:
        """Segments answered and their mean time in this process (arrival to reply), for the stop log.

        Why: set against the front-ends' request time, it splits a request's latency between the engine
        process and everything before and after it.
        """
        mean_ms = self.served_s * 1000 / self.segments if self.segments else 0.0
        return (
            f"{self.segments} segments, {mean_ms:.1f} ms mean in the engine process, "
            f"{self.loop_lag.summary()}"
        )

    @property
    def connections(self) -> int:
        """Front-ends connected now."""
        return len(self._connections)

    async def listen(self, path: str | Path) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self._server = await loop.create_unix_server(lambda: _FrontendConnection(self), path=str(path))
        os.chmod(path, 0o600)
        self.loop_lag.start()

    async def close(self) -> None:
        await self.loop_lag.stop()
        if self._server is not None:
            self._server.close()
            for connection in list(self._connections):
                connection.abort()
            await self._server.wait_closed()
            self._server = None


class _FrontendConnection(FramedProtocol):
    def __init__(self, owner: SegmentServer) -> None:
        super().__init__()
        self._owner = owner
        self._arena: SharedArena | None = None
        self._name = "?"
        self._pending: dict[int, asyncio.Future[Hypothesis]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._owner._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner._connections.discard(self)
        for future in self._pending.values():
            future.cancel()  # the scheduler skips cancelled segments still waiting for a batch
        self._pending.clear()
        log.info("front-end %s disconnected", self._name)
        # The arena is not unmapped here: a batch in a device thread may still read its views.
        self._arena = None

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def frame_received(self, kind: int, payload: bytes) -> None:
        message: Any = pickle.loads(payload)
        if kind == SEGMENT:
            self._segment(message)
        elif kind == HELLO:
            self._hello(message)
        else:
            self.protocol_error(f"unexpected message kind {kind}")

    def _hello(self, message: tuple[str, int, str]) -> None:
        path, size, self._name = message
        try:
            self._arena = SharedArena.attach(Path(path), size)
        except (OSError, ValueError) as exc:
            log.error("front-end %s: cannot map its arena %s: %s", self._name, path, exc)
            self.abort()
            return
        locked = self._owner.engine.page_lock(self._arena.array(0, size // 4))
        log.info(
            "front-end %s connected (arena %s, %d MiB%s)",
            self._name,
            path,
            size >> 20,
            ", page-locked" if locked else "",
        )
        self.send(WELCOME, self._owner.engine.models[0])

    def _segment(self, message: tuple[Any, ...]) -> None:
        request_id, offset, count, request, inline = decode_request(message)
        try:
            if offset >= 0:
                if self._arena is None:
                    raise ValueError("a segment before the arena was announced")
                samples = self._arena.array(offset, count)
            else:
                samples = np.frombuffer(bytearray(inline), dtype=np.float32, count=count)  # writable
            future = asyncio.ensure_future(self._owner.engine.submit(samples, request))
        except Exception as exc:
            self.send(ERROR, encode_error(request_id, exc))
            return
        self._pending[request_id] = future
        future.add_done_callback(functools.partial(self._done, request_id, time.perf_counter()))

    def _done(self, request_id: int, arrived: float, future: asyncio.Future[Hypothesis]) -> None:
        if self._pending.pop(request_id, None) is None or future.cancelled():
            return  # the front-end went away
        exc = future.exception()
        if exc is not None:
            self.send(ERROR, encode_error(request_id, exc))
        else:
            self._owner.segments += 1
            self._owner.served_s += time.perf_counter() - arrived
            self.send(RESULT, encode_hypothesis(request_id, future.result()))


def load_served_engine(
    model_dir: str | Path | None,
    *,
    device: str,
    dtype: str | None,
    **tuning: Any,
) -> Engine:
    """Blocking: the engine process's ``Engine``: the model only (VAD and punctuation live in front-ends).

    ``tuning``: ``EngineConfig.tuned``'s keywords (batching limits, CUDA graphs, device workers).
    """
    config = EngineConfig.tuned(vad="none", **tuning)
    return Engine.load(model_dir, device=device, dtype=dtype, config=config)
