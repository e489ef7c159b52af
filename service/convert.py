"""Protobuf <-> domain conversions, with the request validation that needs only the message itself.

Validation failures are ``ApiError`` INVALID_ARGUMENT naming the field path of the request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, timestamp_pb2
from google.rpc import code_pb2, status_pb2

from asr_engine.types import AudioFormat, Hotword, ModelInfo, Segment, TranscribeOptions
from lingting.asr.v1 import (
    hotword_pb2,
    model_pb2,
    recognition_pb2,
    recognition_service_pb2,
    tenant_pb2,
)
from service.config import Limits
from service.db import ApiKeyRecord, HotwordRecord, HotwordSetRecord, RecognitionFilter, TenantRecord, limits
from service.errors import ApiError
from service.names import api_key_name, hotword_set_name, parse_hotword_set_ref, recognition_name, tenant_name
from service.usecases.hotword_merge import HotwordRequest
from service.usecases.recognition import RecognitionRequest, RecognitionResult

__all__ = [
    "api_key_to_proto",
    "hotword_set_to_proto",
    "model_to_proto",
    "phrases_from_proto",
    "recognition_filter",
    "recognition_request",
    "recognition_to_proto",
    "recognize_response",
    "segment_to_proto",
    "tenant_to_proto",
    "timestamp",
]

Encoding = recognition_pb2.Encoding
_ENCODINGS = {
    Encoding.ENCODING_UNSPECIFIED: "auto",
    Encoding.ENCODING_LINEAR16: "linear16",
    Encoding.ENCODING_WAV: "wav",
    Encoding.ENCODING_FLAC: "flac",
    Encoding.ENCODING_MP3: "mp3",
    Encoding.ENCODING_OGG_OPUS: "ogg_opus",
    Encoding.ENCODING_M4A: "m4a",
    Encoding.ENCODING_WEBM: "webm",
}
_HOTWORD_MODES = {
    "none": model_pb2.HOTWORD_MODE_NONE,
    "context_graph": model_pb2.HOTWORD_MODE_CONTEXT_GRAPH,
    "seaco": model_pb2.HOTWORD_MODE_SEACO,
}
_STATES = {
    "SUCCEEDED": recognition_pb2.Recognition.STATE_SUCCEEDED,
    "FAILED": recognition_pb2.Recognition.STATE_FAILED,
}


def timestamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return ts


def _from_timestamp(message: Any, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    ts: timestamp_pb2.Timestamp = getattr(message, field)
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise ApiError.invalid(field, "is not a valid time") from exc


# -- requests ---------------------------------------------------------------------------------------


def _check_text(field: str, value: str, max_chars: int, *, allow_empty: bool = True) -> None:
    if not allow_empty and not value:
        raise ApiError.invalid(field, "must not be empty")
    if len(value) > max_chars:
        raise ApiError.invalid(field, f"is {len(value)} characters long, the limit is {max_chars}")
    if "\x00" in value:
        raise ApiError.invalid(field, "must not contain NUL characters")


def check_labels(labels: Mapping[str, str], lim: Limits, field: str = "labels") -> dict[str, str]:
    if len(labels) > lim.max_labels:
        raise ApiError.invalid(field, f"{len(labels)} labels, the limit is {lim.max_labels}")
    for key, value in labels.items():
        _check_text(f"{field} key", key, lim.max_label_key_chars, allow_empty=False)
        _check_text(f"{field}[{key!r}]", value, lim.max_label_value_chars)
    return dict(labels)


def _hotword_from_proto(item: hotword_pb2.Hotword) -> Hotword:
    return Hotword(phrase=item.phrase, boost=item.boost if item.HasField("boost") else None)


def recognition_request(
    config: recognition_pb2.RecognitionConfig,
    *,
    has_config: bool,
    labels: Mapping[str, str],
    request_id: str,
    persist: bool,
    lim: Limits,
    prefix: str = "config",
) -> RecognitionRequest:
    """Validate a config and the fields around it; ``prefix`` is the config's field path."""
    if not has_config:
        raise ApiError.invalid(prefix, "is required")
    if config.encoding not in _ENCODINGS:
        raise ApiError.invalid(
            f"{prefix}.encoding", f"unknown encoding {config.encoding}", reason="UNSUPPORTED_ENCODING"
        )
    encoding = _ENCODINGS[config.encoding]
    rate: int | None = None
    channels: int | None = None
    if encoding == "linear16":
        if not 8000 <= config.sample_rate_hertz <= 192_000:
            raise ApiError.invalid(
                f"{prefix}.sample_rate_hertz",
                f"LINEAR16 needs a sample rate in 8000..192000, got {config.sample_rate_hertz}",
            )
        if not 0 <= config.audio_channel_count <= 8:
            raise ApiError.invalid(
                f"{prefix}.audio_channel_count", f"must be in 1..8, got {config.audio_channel_count}"
            )
        rate, channels = config.sample_rate_hertz, config.audio_channel_count or 1
    _check_text(f"{prefix}.language_code", config.language_code, limits.LANGUAGE_MAX)
    _check_text(f"{prefix}.model", config.model, limits.MODEL_MAX)
    _check_text("request_id", request_id, limits.REQUEST_ID_MAX)
    hc = config.hotword_config
    if len(hc.hotwords) > lim.max_hotwords_per_request:
        raise ApiError.invalid(
            f"{prefix}.hotword_config.hotwords",
            f"{len(hc.hotwords)} hotwords, the limit is {lim.max_hotwords_per_request}",
            reason="TOO_MANY_HOTWORDS",
        )
    if len(hc.hotword_sets) > lim.max_hotword_sets_per_request:
        raise ApiError.invalid(
            f"{prefix}.hotword_config.hotword_sets",
            f"{len(hc.hotword_sets)} sets, the limit is {lim.max_hotword_sets_per_request}",
        )
    sets = tuple(
        parse_hotword_set_ref(ref, f"{prefix}.hotword_config.hotword_sets[{i}]")
        for i, ref in enumerate(hc.hotword_sets)
    )
    labels = check_labels(labels, lim)
    language = config.language_code.strip() or None
    options = TranscribeOptions(
        language=None if language in (None, "auto") else language,
        itn=config.enable_itn if config.HasField("enable_itn") else True,
        punctuation=config.enable_punctuation if config.HasField("enable_punctuation") else True,
        word_timestamps=config.enable_word_time_offsets,
        vad=config.enable_vad if config.HasField("enable_vad") else None,
    )
    return RecognitionRequest(
        options=options,
        audio_format=AudioFormat(encoding=encoding, sample_rate_hz=rate, channels=channels),
        hotwords=HotwordRequest(
            inline=tuple(_hotword_from_proto(h) for h in hc.hotwords),
            sets=sets,
            use_tenant_defaults=hc.use_tenant_defaults if hc.HasField("use_tenant_defaults") else True,
        ),
        model=config.model,
        labels=labels,
        request_id=request_id,
        persist=persist,
        config_json=json_format.MessageToDict(config, preserving_proto_field_name=True),
    )


def phrases_from_proto(items: Sequence[hotword_pb2.Hotword], field: str) -> list[HotwordRecord]:
    out: list[HotwordRecord] = []
    for index, item in enumerate(items):
        if item.HasField("boost") and not math.isfinite(item.boost):
            raise ApiError.invalid(f"{field}[{index}].boost", "must be a finite number")
        out.append(HotwordRecord(phrase=item.phrase, boost=item.boost if item.HasField("boost") else None))
    return out


def recognition_filter(
    request: recognition_service_pb2.ListRecognitionsRequest, lim: Limits
) -> RecognitionFilter:
    states: list[str] = []
    names = {v: k for k, v in _STATES.items()}
    for index, state in enumerate(request.states):
        if state not in names:
            raise ApiError.invalid(f"states[{index}]", f"unknown state {state}")
        states.append(names[state])
    _check_text("transcript_contains", request.transcript_contains, 1000)
    return RecognitionFilter(
        create_time_from=_from_timestamp(request, "create_time_start"),
        create_time_to=_from_timestamp(request, "create_time_end"),
        states=tuple(states),
        labels=check_labels(request.labels, lim),
        text_contains=request.transcript_contains,
    )


# -- results ----------------------------------------------------------------------------------------


def segment_to_proto(segment: Segment) -> recognition_pb2.SegmentResult:
    return recognition_pb2.SegmentResult(
        transcript=segment.text,
        transcript_raw=segment.text_raw,
        start_offset_ms=segment.start_ms,
        end_offset_ms=segment.end_ms,
        words=[
            recognition_pb2.WordInfo(word=w.text, start_offset_ms=w.start_ms, end_offset_ms=w.end_ms)
            for w in segment.words
        ],
        language_code=segment.language,
        tags=list(segment.tags),
    )


def _hotword_to_proto(hotword: Hotword | HotwordRecord) -> hotword_pb2.Hotword:
    message = hotword_pb2.Hotword(phrase=hotword.phrase)
    if hotword.boost is not None:
        message.boost = hotword.boost
    return message


def metadata_to_proto(result: RecognitionResult) -> recognition_pb2.RecognitionMetadata:
    return recognition_pb2.RecognitionMetadata(
        audio_duration_ms=result.duration_ms,
        processing_time_ms=result.processing_ms,
        model=result.model,
        applied_hotwords=[_hotword_to_proto(h) for h in result.applied_hotwords],
        applied_hotword_sets=list(result.applied_sets),
        warnings=list(result.warnings),
        request_id=result.request_id,
        language_code=result.language,
    )


def recognize_response(result: RecognitionResult) -> recognition_service_pb2.RecognizeResponse:
    return recognition_service_pb2.RecognizeResponse(
        transcript=result.transcript,
        transcript_raw=result.transcript_raw,
        results=[segment_to_proto(s) for s in result.segments],
        metadata=metadata_to_proto(result),
        recognition=recognition_name(result.recognition_id) if result.recognition_id else "",
        recognition_id=result.recognition_id or 0,
    )


def _error_status(error: str | None) -> status_pb2.Status | None:
    """Stored errors read ``CODE_NAME: message``."""
    if not error:
        return None
    name, sep, message = error.partition(": ")
    known = sep and name in code_pb2.Code.DESCRIPTOR.values_by_name
    code = code_pb2.Code.Value(name) if known else code_pb2.UNKNOWN
    return status_pb2.Status(code=code, message=message if sep else error)


def recognition_to_proto(result: RecognitionResult) -> recognition_pb2.Recognition:
    config = recognition_pb2.RecognitionConfig()
    json_format.ParseDict(dict(result.config_json), config, ignore_unknown_fields=True)
    message = recognition_pb2.Recognition(
        name=recognition_name(result.recognition_id or 0),
        id=result.recognition_id or 0,
        state=_STATES.get(result.state, recognition_pb2.Recognition.STATE_UNSPECIFIED),
        create_time=timestamp(result.create_time),
        config=config,
        labels=dict(result.labels),
        transcript=result.transcript,
        transcript_raw=result.transcript_raw,
        results=[segment_to_proto(s) for s in result.segments],
        metadata=metadata_to_proto(result),
        request_id=result.request_id,
    )
    error = _error_status(result.error)
    if error is not None:
        message.error.CopyFrom(error)
    return message


def model_to_proto(info: ModelInfo, *, is_default: bool) -> model_pb2.Model:
    return model_pb2.Model(
        name=info.name,
        family=info.family,
        languages=list(info.languages),
        hotword_mode=_HOTWORD_MODES.get(info.hotword_mode, model_pb2.HOTWORD_MODE_UNSPECIFIED),
        supports_word_time_offsets=info.word_timestamps,
        supports_punctuation=info.punctuation,
        supports_itn=info.itn,
        supports_rich_tags=info.rich_tags,
        vad=info.vad,
        device=info.device,
        dtype=info.dtype,
        sample_rate_hertz=info.sample_rate_hertz,
        is_default=is_default,
    )


def hotword_set_to_proto(record: HotwordSetRecord) -> hotword_pb2.HotwordSet:
    return hotword_pb2.HotwordSet(
        name=hotword_set_name(record.name),
        id=record.id,
        display_name=record.display_name,
        language_code=record.language,
        tenant_default=record.tenant_default,
        phrases=[_hotword_to_proto(p) for p in record.phrases],
        etag=record.etag,
        create_time=timestamp(record.create_time),
        update_time=timestamp(record.update_time),
    )


def tenant_to_proto(record: TenantRecord) -> tenant_pb2.Tenant:
    return tenant_pb2.Tenant(
        name=tenant_name(record.id),
        id=record.id,
        display_name=record.display_name,
        create_time=timestamp(record.create_time),
        update_time=timestamp(record.update_time),
    )


def api_key_to_proto(record: ApiKeyRecord) -> tenant_pb2.ApiKey:
    return tenant_pb2.ApiKey(
        name=api_key_name(record.tenant_id, record.id),
        id=record.id,
        display_name=record.display_name,
        key_prefix=record.key_prefix,
        create_time=timestamp(record.create_time),
        revoke_time=timestamp(record.revoke_time),
        last_used_time=timestamp(record.last_used_time),
        revoked=record.revoked,
    )
