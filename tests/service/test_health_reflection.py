"""Health (NOT_SERVING until the model is ready) and server reflection."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from lingting.asr.v1 import hotword_set_service_pb2 as hpb
from lingting.asr.v1 import recognition_service_pb2 as pb
from service.server import SERVICE_NAMES, engine_host
from tests.service.conftest import Running, start_server

pytestmark = pytest.mark.asyncio(loop_scope="session")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _status(channel: grpc.aio.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return (await stub.Check(health_pb2.HealthCheckRequest(service=service))).status


async def test_not_serving_while_the_model_cannot_load(sqlite_url: str, tmp_path: object) -> None:
    async with start_server(sqlite_url, None, wait_ready=False, model_dir="/nonexistent/model") as run:
        host = engine_host(run.server)
        for _ in range(100):
            if host.failure is not None:
                break
            await asyncio.sleep(0.05)
        assert host.failure is not None
        assert await _status(run.channel) == NOT_SERVING
        client = await run.new_tenant("early")  # the database side works without a model
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.recognition.ListModels(pb.ListModelsRequest(), metadata=client.md)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        await client.hotwords.ListHotwordSets(hpb.ListHotwordSetsRequest(), metadata=client.md)


async def test_serving_once_the_model_is_loaded(sqlite_url: str) -> None:
    async with start_server(sqlite_url, None, wait_ready=False) as run:  # loads the model from settings
        stub = health_pb2_grpc.HealthStub(run.channel)
        seen = []
        async for response in stub.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAMES[0])):
            seen.append(response.status)
            if response.status == SERVING:
                break
        assert seen[-1] == SERVING and set(seen) <= {NOT_SERVING, SERVING}
        for name in ("", *SERVICE_NAMES):
            assert await _status(run.channel, name) == SERVING


async def test_reflection_lists_the_services(running: Running) -> None:
    database = ProtoReflectionDescriptorDatabase(grpc.insecure_channel(f"127.0.0.1:{running.port}"))
    services = await asyncio.to_thread(database.get_services)
    assert set(SERVICE_NAMES) <= set(services) and "grpc.health.v1.Health" in services
    descriptor = await asyncio.to_thread(
        database.FindFileContainingSymbol, "lingting.asr.v1.RecognitionService"
    )
    assert descriptor.package == "lingting.asr.v1"
