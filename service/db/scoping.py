"""The one place tenant isolation is applied: every tenant-scoped statement starts here.

A row of another tenant must look exactly like a missing row, so repositories never load a row
by id alone; they start from ``scoped(Model, tenant_id)`` (live rows of that tenant) and add
conditions. Also the small checks every repository shares.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, Update, select, update
from sqlalchemy.orm import Session

from service.db.errors import InvalidValueError, NotFoundError
from service.db.models import ApiKey, Hotword, HotwordSet, Recognition, RecognitionLabel, Tenant

__all__ = ["check_text", "require_tenant", "scoped", "scoped_update"]

TenantOwned = TypeVar("TenantOwned", ApiKey, Hotword, HotwordSet, Recognition, RecognitionLabel)


def scoped(model: type[TenantOwned], tenant_id: int) -> Select[TenantOwned]:
    """SELECT of ``model``'s live rows that belong to ``tenant_id``."""
    return select(model).where(model.tenant_id == tenant_id, model.deleted == 0)


def scoped_update(model: type[TenantOwned], tenant_id: int) -> Update:
    """UPDATE of ``model``'s live rows that belong to ``tenant_id`` (add the row conditions)."""
    return (
        update(model)
        .where(model.tenant_id == tenant_id, model.deleted == 0)
        .execution_options(synchronize_session=False)
    )


def require_tenant(session: Session, tenant_id: int) -> Tenant:
    """The live tenant row, or NotFoundError."""
    tenant = session.scalar(select(Tenant).where(Tenant.id == tenant_id, Tenant.deleted == 0))
    if tenant is None:
        raise NotFoundError("tenant", [tenant_id])
    return tenant


def check_text(field: str, value: Any, max_chars: int, *, allow_empty: bool = True) -> str:
    """``value`` as a string within the column's limit, or InvalidValueError naming ``field``."""
    if not isinstance(value, str):
        raise InvalidValueError(field, f"must be a string, got {type(value).__name__}")
    if not allow_empty and not value:
        raise InvalidValueError(field, "must not be empty")
    if len(value) > max_chars:
        raise InvalidValueError(field, f"is {len(value)} characters long, the limit is {max_chars}")
    if "\x00" in value:
        raise InvalidValueError(field, "must not contain NUL characters")
    return value
