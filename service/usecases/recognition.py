"""Recognising audio: resolve hotwords, run the engine within the admission limit, persist, report.

``recognize`` serves the unary call; ``open_stream`` returns a ``StreamRun`` for StreamingRecognize.
Both end in the same ``RecognitionResult``, which is also what a stored recognition reads back as.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import grpc

from asr_engine import errors as engine_errors
from asr_engine.types import AudioFormat, Hotword, Segment, TranscribeOptions, Transcript, Word
from service.admission import Admission
from service.config import Limits
from service.db import Database, DuplicateRequestError, NewRecognition, RecognitionRecord
from service.engine_host import EngineHost, EngineLike, StreamLike
from service.errors import ApiError, as_api_error
from service.usecases.hotword_merge import DefaultSetsCache, HotwordRequest, MergedHotwords, merge_hotwords

__all__ = [
    "RecognitionRequest",
    "RecognitionResult",
    "RecognitionUseCases",
    "StreamRun",
    "segments_from_json",
    "segments_to_json",
]

log = logging.getLogger(__name__)

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
# Engine failures caused by the audio itself: recorded as FAILED recognitions when persisting.
_AUDIO_ERRORS = (engine_errors.AudioDecodeError, engine_errors.AudioTooLongError)


@dataclass(frozen=True, kw_only=True)
class RecognitionRequest:
    """One request, validated: engine options (hotwords still unresolved) and what to store."""

    options: TranscribeOptions
    audio_format: AudioFormat
    hotwords: HotwordRequest
    model: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    request_id: str = ""  # the caller's idempotency key; "" = none
    persist: bool = True
    config_json: Mapping[str, Any] = field(default_factory=dict)  # the config as stored in history


@dataclass(frozen=True, kw_only=True)
class RecognitionResult:
    """A finished recognition, fresh from the engine or read back from history."""

    state: str
    transcript: str
    transcript_raw: str
    segments: tuple[Segment, ...]
    duration_ms: int
    processing_ms: int
    model: str
    language: str
    applied_hotwords: tuple[Hotword, ...]
    applied_sets: tuple[str, ...]
    warnings: tuple[str, ...]
    request_id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    config_json: Mapping[str, Any] = field(default_factory=dict)
    recognition_id: int | None = None
    create_time: datetime | None = None
    error: str | None = None

    @classmethod
    def from_record(cls, record: RecognitionRecord) -> RecognitionResult:
        hotwords, sets = _applied_from_json(record.applied_hotwords)
        return cls(
            state=record.state,
            transcript=record.transcript,
            transcript_raw=record.transcript_raw,
            segments=segments_from_json(record.segments),
            duration_ms=record.audio_duration_ms,
            processing_ms=record.processing_ms,
            model=record.model,
            language=record.language,
            applied_hotwords=hotwords,
            applied_sets=sets,
            warnings=tuple(str(w) for w in record.warnings),
            request_id=record.request_id or "",
            labels=dict(record.labels),
            config_json=dict(record.config),
            recognition_id=record.id,
            create_time=record.create_time,
            error=record.error,
        )


# -- JSON forms stored in the history columns ------------------------------------------------------


def segments_to_json(segments: Sequence[Segment]) -> list[dict[str, Any]]:
    return [
        {
            "start_ms": s.start_ms,
            "end_ms": s.end_ms,
            "text": s.text,
            "text_raw": s.text_raw,
            "words": [{"text": w.text, "start_ms": w.start_ms, "end_ms": w.end_ms} for w in s.words],
            "language": s.language,
            "tags": list(s.tags),
        }
        for s in segments
    ]


def segments_from_json(items: Sequence[Mapping[str, Any]]) -> tuple[Segment, ...]:
    return tuple(
        Segment(
            start_ms=int(s.get("start_ms", 0)),
            end_ms=int(s.get("end_ms", 0)),
            text=str(s.get("text", "")),
            text_raw=str(s.get("text_raw", "")),
            words=tuple(
                Word(
                    text=str(w.get("text", "")),
                    start_ms=int(w.get("start_ms", 0)),
                    end_ms=int(w.get("end_ms", 0)),
                )
                for w in s.get("words", ())
            ),
            language=str(s.get("language", "")),
            tags=tuple(str(t) for t in s.get("tags", ())),
        )
        for s in items
    )


def _applied_to_json(hotwords: Sequence[Hotword], sets: Sequence[str]) -> list[dict[str, Any]]:
    """One list for the ``applied_hotwords`` column: ``{"phrase", "boost"}`` items, then ``{"set"}`` items."""
    return [{"phrase": h.phrase, "boost": h.boost} for h in hotwords] + [{"set": name} for name in sets]


def _applied_from_json(items: Sequence[Any]) -> tuple[tuple[Hotword, ...], tuple[str, ...]]:
    hotwords: list[Hotword] = []
    sets: list[str] = []
    for item in items:
        if isinstance(item, Mapping) and "set" in item:
            sets.append(str(item["set"]))
        elif isinstance(item, Mapping) and "phrase" in item:
            boost = item.get("boost")
            hotwords.append(
                Hotword(phrase=str(item["phrase"]), boost=None if boost is None else float(boost))
            )
        elif isinstance(item, str):
            hotwords.append(Hotword(phrase=item))
    return tuple(hotwords), tuple(sets)


class RecognitionUseCases:
    def __init__(
        self,
        db: Database,
        host: EngineHost,
        admission: Admission,
        limits: Limits,
        defaults: DefaultSetsCache | None = None,
    ) -> None:
        self._db = db
        self._defaults = defaults
        self._host = host
        self._admission = admission
        self._limits = limits

    # -- unary ---------------------------------------------------------------------------------

    async def recognize(
        self, tenant_id: int, request: RecognitionRequest, content: bytes, call_request_id: str
    ) -> RecognitionResult:
        engine = self._engine_for(request.model)
        replay = await self._replay(tenant_id, request)
        if replay is not None:
            return replay
        merged = await merge_hotwords(
            self._db, tenant_id, request.hotwords, self._limits.max_hotwords_per_request, self._defaults
        )
        options = dataclasses.replace(request.options, hotwords=merged.hotwords)
        with self._admission.slot():
            try:
                transcript = await engine.transcribe(
                    content,
                    options,
                    audio_format=request.audio_format,
                    max_duration_ms=self._limits.max_audio_duration_ms,
                )
            except _AUDIO_ERRORS as exc:
                await self._record_failure(tenant_id, request, exc)
                raise
        return await self._finish(tenant_id, request, transcript, merged, call_request_id)

    # -- streaming -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def open_stream(
        self, tenant_id: int, request: RecognitionRequest, *, interim_results: bool, call_request_id: str
    ) -> AsyncIterator[StreamRun]:
        """A stream holding one admission slot for its whole life."""
        engine = self._engine_for(request.model)
        replay = await self._replay(tenant_id, request)
        merged = MergedHotwords(hotwords=(), set_names=())
        session: StreamLike | None = None
        if replay is None:
            merged = await merge_hotwords(
                self._db, tenant_id, request.hotwords, self._limits.max_hotwords_per_request, self._defaults
            )
        with self._admission.slot():
            if replay is None:
                session = engine.open_stream(
                    dataclasses.replace(request.options, hotwords=merged.hotwords),
                    audio_format=request.audio_format,
                    interim_results=interim_results,
                    max_duration_ms=self._limits.max_audio_duration_ms,
                )
            yield StreamRun(self, tenant_id, request, session, merged, replay, call_request_id)

    # -- shared --------------------------------------------------------------------------------

    def _engine_for(self, model: str) -> EngineLike:
        engine = self._host.require()
        if model and model not in {m.name for m in engine.models}:
            names = ", ".join(m.name for m in engine.models)
            raise ApiError.invalid("config.model", f"{model!r} is not loaded; loaded models: {names}")
        return engine

    async def _replay(self, tenant_id: int, request: RecognitionRequest) -> RecognitionResult | None:
        if not (request.persist and request.request_id):
            return None
        existing = await asyncio.to_thread(
            self._db.recognitions.find_by_request_id, tenant_id, request.request_id
        )
        return None if existing is None else RecognitionResult.from_record(existing)

    async def _finish(
        self,
        tenant_id: int,
        request: RecognitionRequest,
        transcript: Transcript,
        merged: MergedHotwords,
        call_request_id: str,
    ) -> RecognitionResult:
        result = RecognitionResult(
            state=SUCCEEDED,
            transcript=transcript.text,
            transcript_raw=transcript.text_raw,
            segments=transcript.segments,
            duration_ms=transcript.duration_ms,
            processing_ms=round(transcript.processing_ms),
            model=transcript.model,
            language=transcript.language,
            applied_hotwords=transcript.applied_hotwords,
            applied_sets=merged.set_names,
            warnings=transcript.warnings,
            request_id=request.request_id or call_request_id,
            labels=dict(request.labels),
            config_json=dict(request.config_json),
        )
        if not request.persist:
            return result
        new = NewRecognition(
            state=SUCCEEDED,
            model=result.model,
            language=result.language,
            request_id=request.request_id or None,
            audio_duration_ms=result.duration_ms,
            processing_ms=result.processing_ms,
            transcript=result.transcript,
            transcript_raw=result.transcript_raw,
            config=request.config_json,
            labels=request.labels,
            segments=segments_to_json(result.segments),
            applied_hotwords=_applied_to_json(result.applied_hotwords, result.applied_sets),
            warnings=list(result.warnings),
        )
        try:
            record = await asyncio.to_thread(self._db.recognitions.create_recognition, tenant_id, new)
        except DuplicateRequestError as exc:  # a concurrent request with the same request_id won
            return RecognitionResult.from_record(exc.existing)
        return dataclasses.replace(result, recognition_id=record.id, create_time=record.create_time)

    async def _record_failure(self, tenant_id: int, request: RecognitionRequest, exc: Exception) -> None:
        """Keep a FAILED entry in history (without the request id, so a corrected retry may reuse it)."""
        if not request.persist:
            return
        error = as_api_error(exc)
        code = error.code if error is not None else grpc.StatusCode.INTERNAL
        message = error.message if error is not None else "recognition failed"
        new = NewRecognition(
            state=FAILED,
            model="",
            language=request.options.language or "",
            config=request.config_json,
            labels=request.labels,
            error=f"{code.name}: {message}"[:60_000],
        )
        try:
            await asyncio.to_thread(self._db.recognitions.create_recognition, tenant_id, new)
        except Exception:
            log.warning("could not record a failed recognition for tenant %d", tenant_id, exc_info=True)


class StreamRun:
    """One StreamingRecognize call after its config: feed audio, then finish."""

    def __init__(
        self,
        owner: RecognitionUseCases,
        tenant_id: int,
        request: RecognitionRequest,
        session: StreamLike | None,
        merged: MergedHotwords,
        replay: RecognitionResult | None,
        call_request_id: str,
    ) -> None:
        self._owner = owner
        self._tenant_id = tenant_id
        self._request = request
        self._session = session
        self._merged = merged
        self._replay = replay
        self._call_request_id = call_request_id
        self._bytes = 0

    async def feed(self, chunk: bytes) -> list[Any]:
        """Events (``StreamEvent``) produced by this chunk; enforces the stream's byte limit."""
        self._bytes += len(chunk)
        limit = self._owner._limits.max_stream_bytes
        if self._bytes > limit:
            raise ApiError.invalid(
                "audio_content",
                f"the stream carried more than {limit} bytes of audio",
                reason="AUDIO_TOO_LARGE",
            )
        if self._session is None:
            return []
        try:
            return await self._session.feed(chunk)
        except _AUDIO_ERRORS as exc:
            await self._owner._record_failure(self._tenant_id, self._request, exc)
            raise

    async def finish(self) -> tuple[list[Any], RecognitionResult]:
        if self._session is None:
            assert self._replay is not None
            return [], self._replay
        try:
            events, transcript = await self._session.finish()
        except _AUDIO_ERRORS as exc:
            await self._owner._record_failure(self._tenant_id, self._request, exc)
            raise
        result = await self._owner._finish(
            self._tenant_id, self._request, transcript, self._merged, self._call_request_id
        )
        return events, result
