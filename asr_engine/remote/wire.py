"""The messages between a front-end and the engine process, and their framing on a Unix socket.

A frame is a 4-byte little-endian payload length, a 1-byte kind and the payload. Payloads are pickled
tuples of plain values (not dataclasses: a ``Hypothesis`` with word times pickles 10-20x slower as a
dataclass than as a tuple, and the engine process pays for every reply). Both ends are processes of
one server started by the same user, so pickle's trust model holds.

Writes are coalesced: frames queued during one event-loop iteration leave in one ``write`` call, so a
batch of results costs one system call per front-end rather than one per segment.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

from asr_engine.errors import EngineError, OverloadedError
from asr_engine.models.base import DecodeRequest, Hypothesis
from asr_engine.types import Hotword, Word

__all__ = [
    "ERROR",
    "HELLO",
    "RESULT",
    "SEGMENT",
    "WELCOME",
    "FramedProtocol",
    "RemoteEngineError",
    "decode_error",
    "decode_hypothesis",
    "decode_request",
    "encode_error",
    "encode_hypothesis",
    "encode_request",
]

HELLO = 1  # front-end -> engine: (arena path, arena bytes, front-end name)
WELCOME = 2  # engine -> front-end: the served model's ModelInfo
SEGMENT = 3  # front-end -> engine: (id, byte offset or -1, samples, language, timestamps, hotwords, inline)
RESULT = 4  # engine -> front-end: (id, hypothesis tuple)
ERROR = 5  # engine -> front-end: (id, kind, message, retry_after_s)

_HEADER = struct.Struct("<IB")
_PICKLE = pickle.HIGHEST_PROTOCOL
MAX_FRAME = 1 << 30


class RemoteEngineError(EngineError):
    """The engine process failed to recognise a segment (its log has the cause)."""


class FramedProtocol(asyncio.Protocol):
    """Length-prefixed frames over a stream transport; subclasses handle ``frame_received``."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._outgoing: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        size = len(buffer)
        while size - start >= _HEADER.size:
            length, kind = _HEADER.unpack_from(buffer, start)
            end = start + _HEADER.size + length
            if length > MAX_FRAME:
                self.protocol_error(f"frame of {length} bytes")
                return
            if end > size:
                break
            self.frame_received(kind, bytes(buffer[start + _HEADER.size : end]))
            start = end
        if start:
            del buffer[:start]

    def frame_received(self, kind: int, payload: bytes) -> None:
        raise NotImplementedError

    def protocol_error(self, what: str) -> None:
        """A peer that breaks framing is dropped: nothing it sends later can be trusted."""
        if self.transport is not None:
            self.transport.abort()

    def send(self, kind: int, message: Any) -> None:
        """Queue a pickled message; everything queued in this loop iteration leaves in one write."""
        payload = pickle.dumps(message, _PICKLE)
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing.append(_HEADER.pack(len(payload), kind))
        self._outgoing.append(payload)

    def _flush(self) -> None:
        chunks, self._outgoing = self._outgoing, []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(chunks))


# -- segment requests ------------------------------------------------------------------------------


def encode_request(
    request_id: int, offset: int, count: int, request: DecodeRequest, inline: bytes = b""
) -> tuple[Any, ...]:
    """``offset`` -1 means the samples travel ``inline`` (a segment larger than the whole arena)."""
    hotwords = tuple((h.phrase, h.boost) for h in request.hotwords)
    return (request_id, offset, count, request.language, request.timestamps, hotwords, inline)


_PLAIN: dict[tuple[str | None, bool], DecodeRequest] = {}


def decode_request(message: tuple[Any, ...]) -> tuple[int, int, int, DecodeRequest, bytes]:
    """(id, offset, count, decoding choices, inline bytes); requests without hotwords are shared objects."""
    request_id, offset, count, language, timestamps, hotwords, inline = message
    if hotwords:
        words = tuple(Hotword(phrase=p, boost=b) for p, b in hotwords)
        request = DecodeRequest(language=language, timestamps=timestamps, hotwords=words)
    else:
        key = (language, timestamps)
        request = _PLAIN.get(key) or _PLAIN.setdefault(
            key, DecodeRequest(language=language, timestamps=timestamps)
        )
    return request_id, offset, count, request, inline


# -- results ---------------------------------------------------------------------------------------


def encode_hypothesis(request_id: int, hyp: Hypothesis) -> tuple[Any, ...]:
    words = tuple((w.text, w.start_ms, w.end_ms) for w in hyp.words)
    return (request_id, (hyp.token_ids, hyp.text, words, hyp.language, hyp.tags))


def decode_hypothesis(fields: tuple[Any, ...]) -> Hypothesis:
    token_ids, text, words, language, tags = fields
    return Hypothesis(
        token_ids=token_ids,
        text=text,
        words=tuple(Word(text=t, start_ms=s, end_ms=e) for t, s, e in words),
        language=language,
        tags=tags,
    )


def encode_error(request_id: int, exc: BaseException) -> tuple[Any, ...]:
    if isinstance(exc, OverloadedError):
        return (request_id, "overloaded", str(exc), exc.retry_after_s)
    return (request_id, "failed", f"{type(exc).__name__}: {exc}", 0.0)


def decode_error(kind: str, message: str, retry_after_s: float) -> EngineError:
    if kind == "overloaded":
        return OverloadedError(message, retry_after_s=retry_after_s)
    return RemoteEngineError(message)
