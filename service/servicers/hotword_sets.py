"""HotwordSetService: CRUD over the calling tenant's hotword sets."""

from __future__ import annotations

from typing import Any

import grpc

from lingting.asr.v1 import hotword_set_service_pb2 as pb
from lingting.asr.v1 import hotword_set_service_pb2_grpc as pb_grpc
from service import context as call_context
from service import convert
from service.errors import ApiError
from service.names import parse_hotword_set
from service.usecases.hotword_sets import UPDATE_PATHS, HotwordSetUseCases

__all__ = ["HotwordSetServicer"]


class HotwordSetServicer(pb_grpc.HotwordSetServiceServicer):
    def __init__(self, hotword_sets: HotwordSetUseCases) -> None:
        self._sets = hotword_sets

    async def CreateHotwordSet(
        self, request: pb.CreateHotwordSetRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateHotwordSetResponse:
        hs = request.hotword_set
        record = await self._sets.create(
            call_context.current_tenant_id(),
            request.hotword_set_id,
            display_name=hs.display_name,
            language=hs.language_code,
            tenant_default=hs.tenant_default,
            phrases=convert.phrases_from_proto(hs.phrases, "hotword_set.phrases"),
        )
        return pb.CreateHotwordSetResponse(hotword_set=convert.hotword_set_to_proto(record))

    async def GetHotwordSet(
        self, request: pb.GetHotwordSetRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetHotwordSetResponse:
        record = await self._sets.get(call_context.current_tenant_id(), parse_hotword_set(request.name))
        return pb.GetHotwordSetResponse(hotword_set=convert.hotword_set_to_proto(record))

    async def ListHotwordSets(
        self, request: pb.ListHotwordSetsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListHotwordSetsResponse:
        flag = request.tenant_default if request.HasField("tenant_default") else None
        page = await self._sets.list(
            call_context.current_tenant_id(), request.page_size, request.page_token, flag
        )
        return pb.ListHotwordSetsResponse(
            hotword_sets=[convert.hotword_set_to_proto(r) for r in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateHotwordSet(
        self, request: pb.UpdateHotwordSetRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateHotwordSetResponse:
        hs = request.hotword_set
        ref = parse_hotword_set(hs.name, "hotword_set.name")
        paths = list(request.update_mask.paths)
        if not paths or paths == ["*"]:
            paths = list(UPDATE_PATHS)
        values: dict[str, Any] = {
            "display_name": hs.display_name,
            "language_code": hs.language_code,
            "tenant_default": hs.tenant_default,
        }
        changes: dict[str, Any] = {}
        for path in paths:
            if path not in UPDATE_PATHS:
                raise ApiError.invalid(
                    "update_mask", f"{path!r} is not updatable; use {sorted(UPDATE_PATHS)}"
                )
            changes[path] = (
                convert.phrases_from_proto(hs.phrases, "hotword_set.phrases")
                if path == "phrases"
                else values[path]
            )
        record = await self._sets.update(call_context.current_tenant_id(), ref, changes, hs.etag)
        return pb.UpdateHotwordSetResponse(hotword_set=convert.hotword_set_to_proto(record))

    async def DeleteHotwordSet(
        self, request: pb.DeleteHotwordSetRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteHotwordSetResponse:
        await self._sets.delete(
            call_context.current_tenant_id(), parse_hotword_set(request.name), request.etag
        )
        return pb.DeleteHotwordSetResponse()
