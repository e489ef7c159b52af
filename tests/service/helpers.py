"""Small helpers for the service tests: status details and hand-made audio."""

from __future__ import annotations

import io
import struct
import wave

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

__all__ = ["error_info", "field_violations", "pcm_of_wav", "retry_info", "wav_bytes"]


def _details(exc: grpc.aio.AioRpcError) -> list:  # type: ignore[type-arg]
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    return [] if status is None else list(status.details)


def error_info(exc: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    for any_ in _details(exc):
        info = error_details_pb2.ErrorInfo()
        if any_.Unpack(info):
            return info
    return None


def field_violations(exc: grpc.aio.AioRpcError) -> list[str]:
    for any_ in _details(exc):
        bad = error_details_pb2.BadRequest()
        if any_.Unpack(bad):
            return [v.field for v in bad.field_violations]
    return []


def retry_info(exc: grpc.aio.AioRpcError) -> error_details_pb2.RetryInfo | None:
    for any_ in _details(exc):
        info = error_details_pb2.RetryInfo()
        if any_.Unpack(info):
            return info
    return None


def pcm_of_wav(data: bytes) -> tuple[bytes, int, int]:
    """(PCM16 frames, sample rate, channels) of a WAV file."""
    with wave.open(io.BytesIO(data)) as w:
        return w.readframes(w.getnframes()), w.getframerate(), w.getnchannels()


def wav_bytes(pcm: bytes, rate: int = 16000, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def wav_claiming_samples(n_samples: int, actual_pcm: bytes) -> bytes:
    """A WAV whose RIFF and data sizes claim ``n_samples`` 16-bit samples but carry ``actual_pcm``."""
    data_size = min(n_samples * 2, 0xFFFFFFFF)
    header = b"RIFF" + struct.pack("<I", min(36 + data_size, 0xFFFFFFFF)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    header += b"data" + struct.pack("<I", data_size)
    return header + actual_pcm
