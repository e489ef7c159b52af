"""The engine's exception tree: one base class, typed subclasses the service maps to gRPC statuses."""

from __future__ import annotations

__all__ = [
    "AudioDecodeError",
    "AudioTooLongError",
    "EngineError",
    "InvalidOptionsError",
    "ModelLoadError",
    "OverloadedError",
    "UnsupportedEncodingError",
]


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


class AudioDecodeError(EngineError):
    """The audio bytes are empty, corrupt, truncated or lie about their content."""


class UnsupportedEncodingError(AudioDecodeError):
    """The container or codec is not one we decode."""


class AudioTooLongError(EngineError):
    """The decoded audio exceeds the configured maximum duration."""

    def __init__(self, duration_ms: int, limit_ms: int) -> None:
        super().__init__(f"audio is {duration_ms} ms long, the limit is {limit_ms} ms")
        self.duration_ms = duration_ms
        self.limit_ms = limit_ms


class InvalidOptionsError(EngineError):
    """An option value is not acceptable; ``field`` names the option."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ModelLoadError(EngineError):
    """A model directory is missing files, has an unknown type or its weights do not match the config."""


class OverloadedError(EngineError):
    """The engine's queue is full; the caller should retry after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
