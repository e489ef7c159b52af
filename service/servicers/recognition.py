"""RecognitionService: Recognize, StreamingRecognize, history and ListModels."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from lingting.asr.v1 import recognition_service_pb2 as pb
from lingting.asr.v1 import recognition_service_pb2_grpc as pb_grpc
from service import context as call_context
from service import convert
from service.config import Limits
from service.engine_host import EngineHost
from service.errors import ApiError
from service.names import parse_recognition
from service.usecases.history import HistoryUseCases
from service.usecases.recognition import RecognitionResult, RecognitionUseCases

__all__ = ["RecognitionServicer"]

_INTERIM_STABILITY = 0.5


class RecognitionServicer(pb_grpc.RecognitionServiceServicer):
    def __init__(
        self, recognitions: RecognitionUseCases, history: HistoryUseCases, host: EngineHost, limits: Limits
    ) -> None:
        self._recognitions = recognitions
        self._history = history
        self._host = host
        self._limits = limits

    async def Recognize(
        self, request: pb.RecognizeRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecognizeResponse:
        if len(request.content) > self._limits.max_audio_bytes:
            raise ApiError.invalid(
                "content",
                f"{len(request.content)} bytes exceed the limit of {self._limits.max_audio_bytes}; "
                "send large files through StreamingRecognize",
                reason="AUDIO_TOO_LARGE",
            )
        job = convert.recognition_request(
            request.config,
            has_config=request.HasField("config"),
            labels=request.labels,
            request_id=request.request_id,
            persist=request.persist if request.HasField("persist") else True,
            lim=self._limits,
        )
        if not request.content:
            raise ApiError.invalid("content", "no audio: the content is empty", reason="AUDIO_EMPTY")
        ctx = call_context.current()
        result = await self._recognitions.recognize(
            call_context.current_tenant_id(), job, request.content, ctx.request_id
        )
        return convert.recognize_response(result)

    async def StreamingRecognize(
        self, request_iterator: AsyncIterator[pb.StreamingRecognizeRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamingRecognizeResponse]:
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("streaming_request") != "streaming_config":
            raise ApiError.invalid(
                "streaming_config", "the first message of the stream must carry streaming_config"
            )
        sc = first.streaming_config
        job = convert.recognition_request(
            sc.config,
            has_config=sc.HasField("config"),
            labels=sc.labels,
            request_id=sc.request_id,
            persist=sc.persist if sc.HasField("persist") else True,
            lim=self._limits,
            prefix="streaming_config.config",
        )
        ctx = call_context.current()
        async with self._recognitions.open_stream(
            call_context.current_tenant_id(),
            job,
            interim_results=sc.interim_results,
            call_request_id=ctx.request_id,
        ) as run:
            async for message in requests:
                kind = message.WhichOneof("streaming_request")
                if kind == "streaming_config":
                    raise ApiError.invalid("streaming_config", "only the first message may carry a config")
                if kind is None:
                    continue
                for response in _event_responses(await run.feed(message.audio_content)):
                    yield response
            events, result = await run.finish()
        yield _last_response(events, result)

    async def GetRecognition(
        self, request: pb.GetRecognitionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetRecognitionResponse:
        record = await self._history.get(call_context.current_tenant_id(), parse_recognition(request.name))
        return pb.GetRecognitionResponse(
            recognition=convert.recognition_to_proto(RecognitionResult.from_record(record))
        )

    async def ListRecognitions(
        self, request: pb.ListRecognitionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRecognitionsResponse:
        query = convert.recognition_filter(request, self._limits)
        page = await self._history.list(
            call_context.current_tenant_id(), query, request.page_size, request.page_token
        )
        return pb.ListRecognitionsResponse(
            recognitions=[convert.recognition_to_proto(RecognitionResult.from_record(r)) for r in page.items],
            next_page_token=page.next_page_token,
        )

    async def DeleteRecognition(
        self, request: pb.DeleteRecognitionRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteRecognitionResponse:
        await self._history.delete(call_context.current_tenant_id(), parse_recognition(request.name))
        return pb.DeleteRecognitionResponse()

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        engine = self._host.require()
        models = engine.models
        return pb.ListModelsResponse(
            models=[convert.model_to_proto(m, is_default=i == 0) for i, m in enumerate(models)]
        )


def _results(events: Sequence[Any], kind: str) -> list[pb.StreamingRecognitionResult]:
    final = kind == "final"
    return [
        pb.StreamingRecognitionResult(
            segment=convert.segment_to_proto(e.segment),
            is_final=final,
            stability=1.0 if final else _INTERIM_STABILITY,
        )
        for e in events
        if e.kind == kind
    ]


def _event_responses(events: Sequence[Any]) -> list[pb.StreamingRecognizeResponse]:
    """Final results first (one END_OF_SEGMENT message), then interim ones (one message)."""
    out = []
    finals = _results(events, "final")
    if finals:
        out.append(
            pb.StreamingRecognizeResponse(
                results=finals, speech_event_type=pb.SPEECH_EVENT_TYPE_END_OF_SEGMENT
            )
        )
    interims = _results(events, "interim")
    if interims:
        out.append(pb.StreamingRecognizeResponse(results=interims))
    return out


def _last_response(events: Sequence[Any], result: RecognitionResult) -> pb.StreamingRecognizeResponse:
    return pb.StreamingRecognizeResponse(
        results=_results(events, "final"),
        speech_event_type=pb.SPEECH_EVENT_TYPE_END_OF_STREAM,
        transcript=result.transcript,
        transcript_raw=result.transcript_raw,
        metadata=convert.metadata_to_proto(result),
        recognition=f"recognitions/{result.recognition_id}" if result.recognition_id else "",
        recognition_id=result.recognition_id or 0,
    )
