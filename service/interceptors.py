"""Cross-cutting concerns, each in one interceptor: call context and logging, error mapping, auth.

Order on the server (outermost first): ``CallContextInterceptor`` (request id, one log line per
RPC), ``ErrorInterceptor`` (exceptions -> statuses), ``AuthInterceptor`` (credential -> tenant).
Only Lingting's own services are intercepted; health and reflection stay open and untouched.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from service import context as call_context
from service.auth import Authenticator
from service.context import CallContext
from service.errors import ApiError, as_api_error, internal_status, to_rpc_status

__all__ = ["LINGTING_PREFIX", "AuthInterceptor", "CallContextInterceptor", "ErrorInterceptor", "interceptors"]

log = logging.getLogger(__name__)
rpc_log = logging.getLogger("lingting.rpc")

LINGTING_PREFIX = "/lingting."
ADMIN_SERVICE = "/lingting.asr.v1.TenantService/"
REQUEST_ID_KEY = "x-request-id"
_REQUEST_ID_RE = re.compile(r"^[\x21-\x7e]{1,128}$")

Behavior = Callable[..., Any]


class _AroundInterceptor(grpc.aio.ServerInterceptor):
    """Runs ``around(context)`` (an async context manager) around every unary and bidi Lingting call.

    With ``parses_requests`` the interceptor also takes over request parsing, so a malformed message
    (such as invalid UTF-8 in a string field) fails inside ``around`` rather than in the runtime.
    """

    parses_requests = False

    def __init__(self) -> None:
        # The wrapped handler of each method, built on its first call: the servicers are fixed once the
        # server starts, so rebuilding it for every RPC would only cost time on the hot path.
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    def around(
        self, method: str, context: grpc.aio.ServicerContext
    ) -> contextlib.AbstractAsyncContextManager[None]:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method  # type: ignore[attr-defined]
        cached = self._handlers.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is None or not method.startswith(LINGTING_PREFIX):
            return handler
        wrapped = self._wrap(method, handler)
        if len(self._handlers) < 1024:  # only real methods reach here; the bound is a guard
            self._handlers[method] = wrapped
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        parse = handler.request_deserializer if self.parses_requests else None
        deserializer = None if self.parses_requests else handler.request_deserializer
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary, parse), deserializer, handler.response_serializer
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._stream(method, handler.stream_stream, parse), deserializer, handler.response_serializer
            )
        return handler  # no unary-stream or stream-unary methods in the contract

    def _unary(self, method: str, behavior: Behavior, parse: Callable[[bytes], Any] | None) -> Behavior:
        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with self.around(method, context):
                return await behavior(_parsed(parse, request), context)

        return call

    def _stream(self, method: str, behavior: Behavior, parse: Callable[[bytes], Any] | None) -> Behavior:
        async def call(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async with self.around(method, context):
                async for response in behavior(_parsed_stream(parse, requests), context):
                    yield response

        return call


def _parsed(parse: Callable[[bytes], Any] | None, raw: Any) -> Any:
    if parse is None:
        return raw
    try:
        return parse(raw)
    except DecodeError as exc:
        raise ApiError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the request message cannot be parsed: {exc}",
            reason="MALFORMED_REQUEST",
        ) from exc


async def _parsed_stream(
    parse: Callable[[bytes], Any] | None, raws: AsyncIterator[Any]
) -> AsyncIterator[Any]:
    async for raw in raws:
        yield _parsed(parse, raw)


def _metadata(context: grpc.aio.ServicerContext, key: str) -> str | None:
    for item in context.invocation_metadata() or ():
        if item.key == key and isinstance(item.value, str):
            return item.value
    return None


class CallContextInterceptor(_AroundInterceptor):
    """Assigns the request id (echoed in trailers) and logs one line per RPC when it ends."""

    def around(
        self, method: str, context: grpc.aio.ServicerContext
    ) -> contextlib.AbstractAsyncContextManager[None]:
        return self._around(method, context)

    @contextlib.asynccontextmanager
    async def _around(self, method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        given = _metadata(context, REQUEST_ID_KEY)
        request_id = given if given and _REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        ctx = CallContext(method=method, request_id=request_id)
        context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
        token = call_context.enter(ctx)
        try:
            yield
        except BaseException:
            if ctx.code == grpc.StatusCode.OK:  # cancelled by the client or the server shutting down
                ctx.code = grpc.StatusCode.CANCELLED
            raise
        finally:
            self._log(ctx)
            call_context.leave(token)

    @staticmethod
    def _log(ctx: CallContext) -> None:
        level = (
            logging.INFO if ctx.code in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED) else logging.WARNING
        )
        if not rpc_log.isEnabledFor(level):
            return
        rpc_log.log(
            level,
            "rpc method=%s tenant=%s status=%s duration_ms=%.1f request_id=%s",
            ctx.method,
            ctx.tenant.id if ctx.tenant else ("admin" if ctx.admin else "-"),
            ctx.code.name,
            (time.perf_counter() - ctx.started) * 1000.0,
            ctx.request_id,
        )


class ErrorInterceptor(_AroundInterceptor):
    """Maps ApiError, engine and database errors to statuses with details; anything else to INTERNAL."""

    parses_requests = True

    def around(
        self, method: str, context: grpc.aio.ServicerContext
    ) -> contextlib.AbstractAsyncContextManager[None]:
        return self._around(method, context)

    @contextlib.asynccontextmanager
    async def _around(self, method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        try:
            yield
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            ctx = call_context.current()
            error = as_api_error(exc)
            if error is None:
                log.error("unexpected error in %s (request_id=%s)", ctx.method, ctx.request_id, exc_info=exc)
                status_proto = internal_status()
            else:
                status_proto = to_rpc_status(error)
            status = rpc_status.to_status(status_proto)
            ctx.code = status.code
            trailers = (*status.trailing_metadata, (REQUEST_ID_KEY, ctx.request_id))
            await context.abort(status.code, status.details, trailers)


class AuthInterceptor(_AroundInterceptor):
    """``authorization: Bearer <secret>``: an API key resolves the tenant.

    TenantService needs the admin token instead.
    """

    def __init__(self, authenticator: Authenticator) -> None:
        super().__init__()
        self._auth = authenticator

    def around(
        self, method: str, context: grpc.aio.ServicerContext
    ) -> contextlib.AbstractAsyncContextManager[None]:
        return self._around(method, context)

    @contextlib.asynccontextmanager
    async def _around(self, method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        await self._check(context, call_context.current())
        yield

    async def _check(self, context: grpc.aio.ServicerContext, ctx: CallContext) -> None:
        header = _metadata(context, "authorization")
        if header is None:
            raise ApiError(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing credentials: send `authorization: Bearer <api key>` metadata",
                reason="CREDENTIALS_MISSING",
            )
        scheme, _, secret = header.strip().partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise ApiError(
                grpc.StatusCode.UNAUTHENTICATED,
                "malformed authorization metadata: expected `Bearer <api key>`",
                reason="CREDENTIALS_MALFORMED",
            )
        if ctx.method.startswith(ADMIN_SERVICE):
            if self._auth.is_admin(secret):
                ctx.admin = True
                return
            if not self._auth.admin_enabled:
                raise ApiError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "TenantService is disabled: no admin token is configured "
                    "(set LINGTING_ADMIN_TOKEN, or manage tenants with `lingting tenants`/`keys`)",
                    reason="ADMIN_DISABLED",
                )
            if await self._auth.tenant_for(secret) is not None:
                raise ApiError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "TenantService needs the admin token; an API key is not enough",
                    reason="ADMIN_REQUIRED",
                )
            raise ApiError(
                grpc.StatusCode.UNAUTHENTICATED, "invalid admin token", reason="CREDENTIALS_INVALID"
            )
        tenant = await self._auth.tenant_for(secret)
        if tenant is None:
            if self._auth.is_admin(secret):
                raise ApiError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "the admin token belongs to no tenant; use an API key",
                    reason="TENANT_REQUIRED",
                )
            raise ApiError(
                grpc.StatusCode.UNAUTHENTICATED, "unknown or revoked API key", reason="CREDENTIALS_INVALID"
            )
        ctx.tenant = tenant


def interceptors(authenticator: Authenticator) -> list[grpc.aio.ServerInterceptor]:
    """The server's interceptor chain, outermost first."""
    return [CallContextInterceptor(), ErrorInterceptor(), AuthInterceptor(authenticator)]
