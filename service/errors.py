"""The one place that turns exceptions into gRPC statuses with ``google.rpc.Status`` details.

Service code raises ``ApiError`` for its own refusals; engine errors (``asr_engine.errors``) and
persistence errors (``service.db.errors``) are mapped here by type. Anything else is INTERNAL,
without leaking its message (it is logged with its stack by the error interceptor).
"""

from __future__ import annotations

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from asr_engine import errors as engine_errors
from service.db import errors as db_errors

__all__ = ["DOMAIN", "ApiError", "FieldViolation", "as_api_error", "internal_status", "to_rpc_status"]

DOMAIN = "lingting.asr.v1"

FieldViolation = tuple[str, str]
"""(field path in the request, what is wrong with it)."""

# Engine option names -> request field paths.
_ENGINE_FIELDS = {
    "language": "config.language_code",
    "hotwords": "config.hotword_config.hotwords",
    "sample_rate_hertz": "config.sample_rate_hertz",
    "audio_channel_count": "config.audio_channel_count",
    "encoding": "config.encoding",
    "audio_content": "audio_content",
}


class ApiError(Exception):
    """A refusal with a status code, an ErrorInfo reason and optional field violations."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str | None = None,
        violations: tuple[FieldViolation, ...] = (),
        retry_after_s: float | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.violations = violations
        self.retry_after_s = retry_after_s
        self.metadata = metadata or {}

    @classmethod
    def invalid(cls, field: str, problem: str, *, reason: str = "INVALID_ARGUMENT") -> ApiError:
        """INVALID_ARGUMENT naming one field."""
        return cls(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{field}: {problem}",
            reason=reason,
            violations=((field, problem),),
        )

    @classmethod
    def not_found(cls, what: str) -> ApiError:
        return cls(grpc.StatusCode.NOT_FOUND, f"{what} not found", reason="NOT_FOUND")


def _from_engine(exc: engine_errors.EngineError) -> ApiError:
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, engine_errors.UnsupportedEncodingError):
        return ApiError(
            invalid,
            f"unsupported audio encoding: {exc}",
            reason="UNSUPPORTED_ENCODING",
            violations=(("config.encoding", str(exc)),),
        )
    if isinstance(exc, engine_errors.AudioDecodeError):
        return ApiError(
            invalid,
            f"cannot decode the audio: {exc}",
            reason="AUDIO_DECODE_FAILED",
            violations=(("content", str(exc)),),
        )
    if isinstance(exc, engine_errors.AudioTooLongError):
        return ApiError(
            invalid,
            str(exc),
            reason="AUDIO_TOO_LONG",
            violations=(("content", str(exc)),),
            metadata={"duration_ms": str(exc.duration_ms), "limit_ms": str(exc.limit_ms)},
        )
    if isinstance(exc, engine_errors.InvalidOptionsError):
        path = _ENGINE_FIELDS.get(exc.field, f"config.{exc.field}")
        return ApiError.invalid(path, exc.reason)
    if isinstance(exc, engine_errors.OverloadedError):
        return ApiError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"the server is saturated: {exc}",
            reason="OVERLOADED",
            retry_after_s=exc.retry_after_s,
        )
    if isinstance(exc, engine_errors.ModelLoadError):
        return ApiError(grpc.StatusCode.UNAVAILABLE, "the model is not available", reason="MODEL_UNAVAILABLE")
    return ApiError(grpc.StatusCode.INTERNAL, "the recognition engine failed", reason="ENGINE_ERROR")


def _from_db(exc: db_errors.DbError) -> ApiError:
    if isinstance(exc, db_errors.NotFoundError):
        shown = ", ".join(str(k) for k in exc.keys)
        return ApiError(grpc.StatusCode.NOT_FOUND, f"{exc.kind} not found: {shown}", reason="NOT_FOUND")
    if isinstance(exc, db_errors.AlreadyExistsError):
        return ApiError(
            grpc.StatusCode.ALREADY_EXISTS, f"{exc.kind} already exists: {exc.key}", reason="ALREADY_EXISTS"
        )
    if isinstance(exc, db_errors.StaleEtagError):
        return ApiError(
            grpc.StatusCode.ABORTED,
            f"{exc.kind} {exc.key} was modified since it was read: etag {exc.expected!r} is stale",
            reason="ETAG_MISMATCH",
            metadata={"current_etag": exc.current},
        )
    if isinstance(exc, db_errors.InvalidPageTokenError):
        return ApiError.invalid("page_token", exc.reason, reason="INVALID_PAGE_TOKEN")
    if isinstance(exc, db_errors.InvalidValueError):
        return ApiError.invalid(exc.field, exc.reason)
    if isinstance(exc, db_errors.DuplicateRequestError):
        return ApiError(grpc.StatusCode.ALREADY_EXISTS, str(exc), reason="DUPLICATE_REQUEST_ID")
    return ApiError(
        grpc.StatusCode.UNAVAILABLE,
        "the database is not available",
        reason="DATABASE_ERROR",
        retry_after_s=1.0,
    )


def as_api_error(exc: BaseException) -> ApiError | None:
    """The ApiError an exception stands for, or None when it is unexpected (-> INTERNAL)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, engine_errors.EngineError):
        return _from_engine(exc)
    if isinstance(exc, db_errors.DbError):
        return _from_db(exc)
    try:  # the database driver failing (connection lost, lock timeout) is transient
        from sqlalchemy.exc import OperationalError
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, OperationalError):
        return ApiError(
            grpc.StatusCode.UNAVAILABLE,
            "the database is not available",
            reason="DATABASE_ERROR",
            retry_after_s=1.0,
        )
    return None


def to_rpc_status(error: ApiError) -> status_pb2.Status:
    """A ``google.rpc.Status`` with ErrorInfo, BadRequest and RetryInfo details as applicable."""
    status = status_pb2.Status(code=error.code.value[0], message=error.message)
    if error.reason:
        info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata)
        status.details.add().Pack(info)
    if error.violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                for f, d in error.violations
            ]
        )
        status.details.add().Pack(bad)
    if error.retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(error.retry_after_s * 1e9))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    return status


def internal_status() -> status_pb2.Status:
    """The status of an unexpected failure: says nothing about internals."""
    return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error; see the server log")
