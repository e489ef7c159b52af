"""Building and running the gRPC server: servicers, interceptors, health, reflection, engine loading.

``create_server`` returns a started server and its port at once; health says NOT_SERVING until the
engine is loaded and warmed, then SERVING for "" and every Lingting service. ``stop_server`` stops
it and closes what it owns. ``serve`` is the blocking entry point of ``lingting serve``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from lingting.asr.v1 import (
    hotword_set_service_pb2,
    hotword_set_service_pb2_grpc,
    recognition_service_pb2,
    recognition_service_pb2_grpc,
    tenant_service_pb2,
    tenant_service_pb2_grpc,
)
from service.admission import Admission
from service.auth import Authenticator
from service.config import MIB, Settings
from service.db import Database, require_current
from service.engine_host import EngineHost, EngineLike, engine_tuning, load_engine
from service.interceptors import interceptors
from service.servicers.hotword_sets import HotwordSetServicer
from service.servicers.recognition import RecognitionServicer
from service.servicers.tenants import TenantServicer
from service.usecases.history import HistoryUseCases
from service.usecases.hotword_merge import DefaultSetsCache
from service.usecases.hotword_sets import HotwordSetUseCases
from service.usecases.recognition import RecognitionUseCases
from service.usecases.tenants import TenantUseCases

__all__ = ["SERVICE_NAMES", "create_server", "serve", "stop_server"]

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    recognition_service_pb2.DESCRIPTOR.services_by_name["RecognitionService"].full_name,
    hotword_set_service_pb2.DESCRIPTOR.services_by_name["HotwordSetService"].full_name,
    tenant_service_pb2.DESCRIPTOR.services_by_name["TenantService"].full_name,
)


@dataclass
class _Owned:
    """What ``stop_server`` must close besides the server itself."""

    host: EngineHost
    db: Database
    owns_db: bool


_owned: weakref.WeakKeyDictionary[grpc.aio.Server, _Owned] = weakref.WeakKeyDictionary()


async def create_server(
    settings: Settings,
    engine: EngineLike | None = None,
    db: Database | None = None,
    *,
    engine_loader: Callable[[], EngineLike] | None = None,
    reuse_port: bool = False,
) -> tuple[grpc.aio.Server, int]:
    """A started server bound to ``settings.host:settings.port`` (port 0 picks one); returns it and its port.

    Without ``engine`` the model is loaded in the background by ``engine_loader`` (default: from
    ``settings``); without ``db`` one is opened on ``settings.resolved_database_url``, whose schema must
    be at the migration head. ``reuse_port`` lets several front-end processes listen on one port
    (SO_REUSEPORT: the kernel spreads new connections over them).
    """
    owns_db = db is None
    if db is None:
        url = settings.resolved_database_url
        await asyncio.to_thread(require_current, url)
        db = Database(url, api_key_pepper=settings.api_key_pepper)
    limits = settings.limits
    authenticator = Authenticator(db, admin_token=settings.admin_token, ttl_s=settings.auth_cache_ttl_s)
    host = EngineHost(engine)
    max_message = limits.max_receive_message_mb * MIB
    options: list[tuple[str, int]] = [
        ("grpc.max_receive_message_length", max_message),
        ("grpc.max_send_message_length", max_message),
    ]
    if reuse_port:
        options.append(("grpc.so_reuseport", 1))
    server = grpc.aio.server(interceptors=interceptors(authenticator), options=options)
    admission = Admission(limits.max_in_flight, limits.retry_after_s)
    defaults = DefaultSetsCache()  # shared so that hotword-set changes invalidate what requests read
    recognition_service_pb2_grpc.add_RecognitionServiceServicer_to_server(
        RecognitionServicer(
            RecognitionUseCases(db, host, admission, limits, defaults), HistoryUseCases(db), host, limits
        ),
        server,
    )
    hotword_set_service_pb2_grpc.add_HotwordSetServiceServicer_to_server(
        HotwordSetServicer(HotwordSetUseCases(db, defaults)), server
    )
    tenant_service_pb2_grpc.add_TenantServiceServicer_to_server(
        TenantServicer(TenantUseCases(db, authenticator)), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = server.add_insecure_port(settings.address)
    if port == 0:
        raise OSError(f"cannot listen on {settings.address}")
    await server.start()

    async def on_ready() -> None:
        for name in ("", *SERVICE_NAMES):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    loader = engine_loader
    if engine is None and loader is None:

        def loader() -> EngineLike:
            return load_engine(
                settings.model_dir,
                device=settings.device,
                dtype=settings.dtype,
                vad_model_dir=settings.vad_model_dir,
                punc_model_dir=settings.punc_model_dir,
                **engine_tuning(settings),
            )

    host.start(loader, on_ready)
    _owned[server] = _Owned(host=host, db=db, owns_db=owns_db)
    log.info("listening on %s:%d", settings.host, port)
    return server, port


async def stop_server(server: grpc.aio.Server, grace_s: float | None = None) -> None:
    """Stop accepting calls, let running ones finish within ``grace_s``, close the engine and database."""
    await server.stop(grace_s)
    owned = _owned.pop(server, None)
    if owned is None:
        return
    await owned.host.close()
    if owned.owns_db:
        owned.db.close()


def engine_host(server: grpc.aio.Server) -> EngineHost:
    """The engine host of a server made by ``create_server`` (tests wait on its readiness)."""
    return _owned[server].host


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM; exits with an error if the engine fails to load."""
    server, port = await create_server(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    host = engine_host(server)
    ready = asyncio.create_task(host.wait_ready())
    stopping = asyncio.create_task(stop.wait())
    failed = asyncio.create_task(_wait_failure(host))
    await asyncio.wait({ready, stopping, failed}, return_when=asyncio.FIRST_COMPLETED)
    if failed.done() and not stopping.done():
        await stop_server(server, 0)
        raise RuntimeError(f"the speech engine failed to load: {host.failure}")
    if ready.done():
        log.warning("lingting serving on %s:%d", settings.host, port)
    await stopping
    failed.cancel()
    ready.cancel()
    log.warning("shutting down")
    await stop_server(server, settings.shutdown_grace_s)


async def _wait_failure(host: EngineHost) -> None:
    while host.failure is None:
        await asyncio.sleep(0.2)
