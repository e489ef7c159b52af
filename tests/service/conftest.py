"""A real Lingting server on 127.0.0.1 (port 0) per test module: real engine, real database, real audio.

The engine loads the tiny FunASR parity Paraformer (random weights, so texts are gibberish but
deterministic); the database is a fresh SQLite file migrated to head. Modules that need PostgreSQL
and MariaDB build their own servers with ``start_server``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from asr_engine.engine import Engine
from lingting.asr.v1 import (
    hotword_set_service_pb2_grpc,
    recognition_service_pb2_grpc,
    tenant_service_pb2,
    tenant_service_pb2_grpc,
)
from service.config import Limits, Settings
from service.db import Database
from service.server import create_server, engine_host, stop_server
from tests.conftest import PARITY_DIR
from tests.dbutil import migrated_database

MODEL_DIR = PARITY_DIR / "paraformer" / "model"
AUDIO_DIR = PARITY_DIR / "paraformer" / "audio"
ADMIN_TOKEN = "test-admin-" + secrets.token_hex(8)
TEST_LIMITS = Limits(
    max_audio_bytes=4 * 1024 * 1024,
    max_audio_duration_s=120.0,
    max_hotwords_per_request=200,
    max_receive_message_mb=16,
    max_stream_bytes=32 * 1024 * 1024,
)


def audio(name: str) -> bytes:
    return (AUDIO_DIR / name).read_bytes()


def bearer(secret: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {secret}"),)


@dataclass
class Client:
    """Stubs on one channel plus the tenant's credential."""

    channel: grpc.aio.Channel
    secret: str
    tenant_name: str = ""
    recognition: recognition_service_pb2_grpc.RecognitionServiceStub = field(init=False)
    hotwords: hotword_set_service_pb2_grpc.HotwordSetServiceStub = field(init=False)
    tenants: tenant_service_pb2_grpc.TenantServiceStub = field(init=False)

    def __post_init__(self) -> None:
        self.recognition = recognition_service_pb2_grpc.RecognitionServiceStub(self.channel)
        self.hotwords = hotword_set_service_pb2_grpc.HotwordSetServiceStub(self.channel)
        self.tenants = tenant_service_pb2_grpc.TenantServiceStub(self.channel)

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        return bearer(self.secret)


@dataclass
class Running:
    server: grpc.aio.Server
    port: int
    channel: grpc.aio.Channel
    admin: Client
    database: Database

    async def new_tenant(self, display_name: str = "tenant") -> Client:
        """A tenant and an API key, made through TenantService with the admin token."""
        created = await self.admin.tenants.CreateTenant(
            tenant_service_pb2.CreateTenantRequest(tenant={"display_name": display_name}),
            metadata=self.admin.md,
        )
        key = await self.admin.tenants.CreateApiKey(
            tenant_service_pb2.CreateApiKeyRequest(
                parent=created.tenant.name, api_key={"display_name": "test"}
            ),
            metadata=self.admin.md,
        )
        return Client(self.channel, key.secret, created.tenant.name)


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    # One engine for the whole session; its batch worker lives on the session's event loop.
    yield Engine.load(MODEL_DIR, device="cpu", dtype="float32")


@asynccontextmanager
async def start_server(
    db_url: str,
    engine: Engine | None,
    *,
    limits: Limits = TEST_LIMITS,
    wait_ready: bool = True,
    **settings: object,
) -> AsyncIterator[Running]:
    values: dict[str, object] = {"model_dir": MODEL_DIR, "device": "cpu", "dtype": "float32", **settings}
    config = Settings(
        host="127.0.0.1",
        port=0,
        database_url=db_url,
        admin_token=ADMIN_TOKEN,
        limits=limits,
        **values,  # type: ignore[arg-type]
    )
    database = Database(db_url)
    server, port = await create_server(config, engine=engine, db=database)
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{port}",
        options=[
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ],
    )
    try:
        if wait_ready:
            await engine_host(server).wait_ready()
        yield Running(server, port, channel, Client(channel, ADMIN_TOKEN), database)
    finally:
        await channel.close()
        await stop_server(server, 0)
        database.close()


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("svc-db")
    with migrated_database("sqlite", tmp) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def running(sqlite_url: str, engine: Engine) -> AsyncIterator[Running]:
    async with start_server(sqlite_url, engine) as run:
        yield run


@pytest_asyncio.fixture(loop_scope="session")
async def tenant_a(running: Running) -> Client:
    return await running.new_tenant("A")


@pytest_asyncio.fixture(loop_scope="session")
async def tenant_b(running: Running) -> Client:
    return await running.new_tenant("B")
