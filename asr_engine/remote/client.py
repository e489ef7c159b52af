"""The front-end's side: a ``SegmentRecogniser`` whose model is in the engine process.

``recognise`` copies the segment into a free block of this front-end's arena, sends a small message
and waits for the reply; the block is freed when the reply arrives, even if the caller gave up in the
meantime (the engine process may be reading it). When the arena is full, segments wait in arrival
order for space (a 2-hour recording's segments are all submitted at once); a segment larger than the
whole arena travels inside its message instead.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import pickle
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from asr_engine.errors import ModelLoadError
from asr_engine.models.base import DecodeRequest, Hypothesis
from asr_engine.remote.arena import ArenaAllocator, SharedArena
from asr_engine.remote.wire import (
    ERROR,
    HELLO,
    RESULT,
    SEGMENT,
    WELCOME,
    FramedProtocol,
    decode_error,
    decode_hypothesis,
    encode_request,
)
from asr_engine.types import ModelInfo

__all__ = ["EngineProcessLostError", "RemoteRecogniser"]

log = logging.getLogger(__name__)


class EngineProcessLostError(ModelLoadError):
    """The engine process is gone (or never answered): the model is not available to this front-end."""


class RemoteRecogniser:
    """Sends segments to the engine process listening on ``socket_path``; owns this front-end's arena."""

    def __init__(
        self,
        socket_path: str | Path,
        arena: SharedArena,
        *,
        name: str = "frontend",
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self._socket_path = str(socket_path)
        self._arena = arena
        self._allocator = ArenaAllocator(arena.size)
        self._name = name
        self._on_lost = on_lost
        self._protocol: _EngineConnection | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.Future[Hypothesis], int, int]] = {}
        self._space_waiters: collections.deque[tuple[int, asyncio.Future[int]]] = collections.deque()
        self._welcome: asyncio.Future[ModelInfo] | None = None
        self._lost: BaseException | None = None
        self._closing = False
        self.model_info: ModelInfo | None = None
        self.waited = 0  # segments that waited for arena space
        self.inline = 0  # segments too large for the arena, sent inside their message

    async def start(self, retry_s: float = 0.1) -> None:
        """Connect (waiting for the engine process to listen: it does once its model is warm)."""
        if self._protocol is not None:
            return
        loop = asyncio.get_running_loop()
        next_note = time.monotonic() + 30.0
        while True:
            try:
                _, protocol = await loop.create_unix_connection(
                    lambda: _EngineConnection(self), self._socket_path
                )
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > next_note:
                    log.info("still waiting for the engine process at %s", self._socket_path)
                    next_note += 60.0
                await asyncio.sleep(retry_s)
        self._protocol = protocol
        self._welcome = loop.create_future()
        protocol.send(HELLO, (str(self._arena.path), self._arena.size, self._name))
        self.model_info = await self._welcome
        log.info(
            "connected to the engine process: model %s on %s", self.model_info.name, self.model_info.device
        )

    async def close(self) -> None:
        self._closing = True
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._fail_all(EngineProcessLostError("this front-end is shutting down"))
        self._arena.close()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def recognise(self, samples: np.ndarray, request: DecodeRequest) -> Awaitable[Hypothesis]:
        return self._recognise(samples, request)

    async def _recognise(self, samples: np.ndarray, request: DecodeRequest) -> Hypothesis:
        if self._lost is not None:
            raise self._lost
        if self._protocol is None:
            raise RuntimeError("the remote recogniser is not started")
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        nbytes = samples.nbytes
        inline = nbytes > self._allocator.size
        offset = -1 if inline else await self._block(nbytes)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Hypothesis] = loop.create_future()
        request_id = next(self._ids)
        if inline:
            self.inline += 1
            message = encode_request(request_id, -1, samples.size, request, samples.tobytes())
        else:
            self._arena.array(offset, samples.size)[:] = samples
            message = encode_request(request_id, offset, samples.size, request)
        self._pending[request_id] = (future, offset, nbytes)
        self._protocol.send(SEGMENT, message)
        return await future

    async def _block(self, nbytes: int) -> int:
        """A free block, waiting behind earlier segments when the arena is full."""
        if not self._space_waiters:
            offset = self._allocator.alloc(nbytes)
            if offset is not None:
                return offset
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._space_waiters.append((nbytes, waiter))
        self.waited += 1
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # got space, then was cancelled: give it back
                self._release(waiter.result(), nbytes)
            raise

    def _release(self, offset: int, nbytes: int) -> None:
        if offset >= 0:
            self._allocator.free(offset, nbytes)
        while self._space_waiters:
            need, waiter = self._space_waiters[0]
            if waiter.done():
                self._space_waiters.popleft()
                continue
            got = self._allocator.alloc(need)
            if got is None:
                return
            self._space_waiters.popleft()
            waiter.set_result(got)

    # -- from the connection -------------------------------------------------------------------------
    def _message(self, kind: int, payload: bytes) -> None:
        message: Any = pickle.loads(payload)
        if kind in (RESULT, ERROR):
            future = self._settle(message[0])
            if future is not None and not future.done():
                if kind == RESULT:
                    future.set_result(decode_hypothesis(message[1]))
                else:
                    future.set_exception(decode_error(*message[1:]))
        elif kind == WELCOME and self._welcome is not None and not self._welcome.done():
            self._welcome.set_result(message)

    def _settle(self, request_id: int) -> asyncio.Future[Hypothesis] | None:
        """The waiting caller's future (None if unknown); the segment's block is free again."""
        entry = self._pending.pop(request_id, None)
        if entry is None:
            return None
        future, offset, nbytes = entry
        self._release(offset, nbytes)
        return future

    def _connection_lost(self) -> None:
        if self._closing:
            return
        error = EngineProcessLostError("the engine process closed its connection")
        log.error("%s: lost the engine process; %d segments in flight fail", self._name, len(self._pending))
        self._fail_all(error)
        if self._on_lost is not None:
            self._on_lost()

    def _fail_all(self, error: BaseException) -> None:
        self._lost = error
        pending, self._pending = self._pending, {}
        for future, _, _ in pending.values():
            if not future.done():
                future.set_exception(error)
        while self._space_waiters:
            _, waiter = self._space_waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        if self._welcome is not None and not self._welcome.done():
            self._welcome.set_exception(error)


class _EngineConnection(FramedProtocol):
    def __init__(self, owner: RemoteRecogniser) -> None:
        super().__init__()
        self._owner = owner

    def frame_received(self, kind: int, payload: bytes) -> None:
        self._owner._message(kind, payload)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner._connection_lost()

    def protocol_error(self, what: str) -> None:
        log.error("malformed message from the engine process: %s", what)
        with contextlib.suppress(Exception):
            super().protocol_error(what)
