"""Tenants: the unit of isolation. Every other row carries a ``tenant_id``."""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from service.db import limits
from service.db.coltypes import utcnow
from service.db.errors import AlreadyExistsError, InvalidValueError, NotFoundError
from service.db.ids import IdGenerator
from service.db.models import Tenant
from service.db.paging import clamp_page_size, decode_token, encode_token, fingerprint
from service.db.records import Page, TenantRecord
from service.db.scoping import check_text, require_tenant
from service.db.session import Sessions

__all__ = ["TenantRepository", "tenant_record"]

log = logging.getLogger(__name__)

_MAX_ID = (1 << 63) - 1


def tenant_record(row: Tenant) -> TenantRecord:
    return TenantRecord(
        id=row.id, display_name=row.display_name, create_time=row.create_time, update_time=row.update_time
    )


class TenantRepository:
    def __init__(self, sessions: Sessions, ids: IdGenerator) -> None:
        self._sessions = sessions
        self._ids = ids

    def create_tenant(self, display_name: str, tenant_id: int | None = None) -> TenantRecord:
        """A new tenant; ``tenant_id`` may be chosen (e.g. a fixed bootstrap tenant), else one is minted.

        AlreadyExistsError if a tenant (even a deleted one) already has that id.
        """
        check_text("display_name", display_name, limits.TENANT_DISPLAY_NAME_MAX)
        if tenant_id is not None and not 0 < tenant_id <= _MAX_ID:
            raise InvalidValueError("tenant_id", f"must be in 1..{_MAX_ID}, got {tenant_id}")
        new_id = self._ids.next_id() if tenant_id is None else tenant_id
        now = utcnow()
        row = Tenant(
            id=new_id, display_name=display_name, create_time=now, update_time=now, deleted=0, version=1
        )
        try:
            with self._sessions.write() as session:
                if session.get(Tenant, new_id) is not None:
                    raise AlreadyExistsError("tenant", new_id)
                session.add(row)
                session.flush()
                return tenant_record(row)
        except IntegrityError as exc:  # a concurrent insert of the same chosen id
            raise AlreadyExistsError("tenant", new_id) from exc

    def get_tenant(self, tenant_id: int) -> TenantRecord:
        """The live tenant, or NotFoundError."""
        with self._sessions.read() as session:
            return tenant_record(require_tenant(session, tenant_id))

    def list_tenants(self, page_size: int = 0, page_token: str = "") -> Page[TenantRecord]:
        """Live tenants in creation (id) order."""
        size = clamp_page_size(page_size)
        fp = fingerprint("tenant", None, {})
        stmt = select(Tenant).where(Tenant.deleted == 0)
        if page_token:
            (after_id,) = decode_token(page_token, fp, (int,))
            stmt = stmt.where(Tenant.id > after_id)
        stmt = stmt.order_by(Tenant.id).limit(size + 1)
        with self._sessions.read() as session:
            rows = list(session.scalars(stmt))
        more = len(rows) > size
        rows = rows[:size]
        token = encode_token(fp, [rows[-1].id]) if more else ""
        return Page(items=tuple(tenant_record(r) for r in rows), next_page_token=token)

    def delete_tenant(self, tenant_id: int) -> None:
        """Logically delete a tenant: its API keys stop authenticating; its data stays for an operator."""
        with self._sessions.write() as session:
            result = session.execute(
                update(Tenant)
                .where(Tenant.id == tenant_id, Tenant.deleted == 0)
                .values(deleted=1, version=Tenant.version + 1, update_time=utcnow())
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise NotFoundError("tenant", [tenant_id])
        log.info("tenant %d deleted", tenant_id)
