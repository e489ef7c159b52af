"""Per-call state shared by the interceptors and the servicers through a context variable.

The outermost interceptor creates one ``CallContext`` per RPC; the auth interceptor fills in the
tenant; the error interceptor records the final status; servicers read the tenant and request id.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass, field

import grpc

from service.db import TenantRecord

__all__ = ["CallContext", "current", "current_tenant_id"]


@dataclass
class CallContext:
    method: str
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    tenant: TenantRecord | None = None
    admin: bool = False
    code: grpc.StatusCode = grpc.StatusCode.OK


_current: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar("lingting_call", default=None)


def current() -> CallContext:
    """The running RPC's context (RuntimeError outside an intercepted call)."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("no RPC in progress on this task")
    return ctx


def current_tenant_id() -> int:
    """The authenticated tenant's id; the auth interceptor guarantees one on tenant services."""
    tenant = current().tenant
    if tenant is None:
        raise RuntimeError("no authenticated tenant on this call")
    return tenant.id


def enter(ctx: CallContext) -> contextvars.Token[CallContext | None]:
    return _current.set(ctx)


def leave(token: contextvars.Token[CallContext | None]) -> None:
    _current.reset(token)
