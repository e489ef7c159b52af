"""API keys: a tenant's credentials. The secret is shown once; only its hash is stored.

A secret is ``lt_`` + 43 urlsafe characters (32 random bytes). The stored hash is SHA-256 of the
secret, or HMAC-SHA256 with a server-side pepper when one is configured (a leaked table alone is
then useless). Lookups go through a unique index on the hash; the final comparison is constant-time.
``last_used_time`` is refreshed at most once per ``touch_interval`` per key, so authentication does
not write on every request; callers may still cache ``authenticate`` results for a few seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError

from service.db import limits
from service.db.coltypes import utcnow
from service.db.errors import NotFoundError
from service.db.ids import IdGenerator
from service.db.models import ApiKey, Tenant
from service.db.paging import clamp_page_size, decode_token, encode_token, fingerprint
from service.db.records import ApiKeyRecord, Page, TenantRecord
from service.db.scoping import check_text, require_tenant, scoped, scoped_update
from service.db.session import Sessions
from service.db.tenants import tenant_record

__all__ = ["SECRET_PREFIX", "ApiKeyRepository"]

log = logging.getLogger(__name__)

SECRET_PREFIX = "lt_"
_SECRET_BYTES = 32
_DISPLAY_PREFIX_CHARS = len(SECRET_PREFIX) + 8
_MAX_SECRET_CHARS = 256


def api_key_record(row: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        display_name=row.display_name,
        key_prefix=row.key_prefix,
        create_time=row.create_time,
        revoke_time=row.revoke_time,
        last_used_time=row.last_used_time,
    )


class ApiKeyRepository:
    def __init__(
        self,
        sessions: Sessions,
        ids: IdGenerator,
        *,
        pepper: bytes | None = None,
        touch_interval: timedelta = timedelta(minutes=10),
    ) -> None:
        self._sessions = sessions
        self._ids = ids
        self._pepper = pepper or None
        self._touch_interval = touch_interval

    def hash_secret(self, secret: str) -> str:
        """Hex digest stored for ``secret`` (peppered HMAC when a pepper is configured)."""
        data = secret.encode("utf-8")
        if self._pepper is not None:
            return hmac.new(self._pepper, data, hashlib.sha256).hexdigest()
        return hashlib.sha256(data).hexdigest()

    def create_api_key(self, tenant_id: int, display_name: str) -> tuple[ApiKeyRecord, str]:
        """A new key for a live tenant and its secret; the secret cannot be retrieved later."""
        check_text("display_name", display_name, limits.API_KEY_DISPLAY_NAME_MAX)
        secret = SECRET_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
        now = utcnow()
        row = ApiKey(
            id=self._ids.next_id(),
            tenant_id=tenant_id,
            display_name=display_name,
            key_prefix=secret[:_DISPLAY_PREFIX_CHARS],
            key_hash=self.hash_secret(secret),
            revoke_time=None,
            last_used_time=None,
            create_time=now,
            update_time=now,
            deleted=0,
            version=1,
        )
        with self._sessions.write() as session:
            require_tenant(session, tenant_id)
            session.add(row)
            session.flush()
            record = api_key_record(row)
        log.info("api key %d (%s...) created for tenant %d", record.id, record.key_prefix, tenant_id)
        return record, secret

    def get_api_key(self, tenant_id: int, key_id: int) -> ApiKeyRecord:
        with self._sessions.read() as session:
            row = session.scalar(scoped(ApiKey, tenant_id).where(ApiKey.id == key_id))
            if row is None:
                raise NotFoundError("api_key", [key_id])
            return api_key_record(row)

    def list_api_keys(self, tenant_id: int, page_size: int = 0, page_token: str = "") -> Page[ApiKeyRecord]:
        """The tenant's keys (revoked ones included, marked by ``revoke_time``), oldest first."""
        size = clamp_page_size(page_size)
        fp = fingerprint("api_key", tenant_id, {})
        stmt = scoped(ApiKey, tenant_id)
        if page_token:
            (after_id,) = decode_token(page_token, fp, (int,))
            stmt = stmt.where(ApiKey.id > after_id)
        with self._sessions.read() as session:
            rows = list(session.scalars(stmt.order_by(ApiKey.id).limit(size + 1)))
        more = len(rows) > size
        rows = rows[:size]
        token = encode_token(fp, [rows[-1].id]) if more else ""
        return Page(items=tuple(api_key_record(r) for r in rows), next_page_token=token)

    def revoke_api_key(self, tenant_id: int, key_id: int) -> ApiKeyRecord:
        """Revoke a key (idempotent: revoking a revoked key keeps its first revoke_time)."""
        now = utcnow()
        with self._sessions.write() as session:
            session.execute(
                scoped_update(ApiKey, tenant_id)
                .where(ApiKey.id == key_id, ApiKey.revoke_time.is_(None))
                .values(revoke_time=now, update_time=now, version=ApiKey.version + 1)
            )
            row = session.scalar(
                scoped(ApiKey, tenant_id).where(ApiKey.id == key_id).execution_options(populate_existing=True)
            )
            if row is None:
                raise NotFoundError("api_key", [key_id])
            record = api_key_record(row)
        log.info("api key %d of tenant %d revoked", key_id, tenant_id)
        return record

    def authenticate(self, secret: str) -> TenantRecord | None:
        """The tenant a live, unrevoked key belongs to, or None (unknown, revoked, deleted, malformed)."""
        if not secret.startswith(SECRET_PREFIX) or len(secret) > _MAX_SECRET_CHARS:
            return None
        digest = self.hash_secret(secret)
        with self._sessions.read() as session:
            found = session.execute(
                select(ApiKey, Tenant)
                .join(Tenant, Tenant.id == ApiKey.tenant_id)
                .where(
                    ApiKey.key_hash == digest,
                    ApiKey.deleted == 0,
                    ApiKey.revoke_time.is_(None),
                    Tenant.deleted == 0,
                )
            ).one_or_none()
            if found is None:
                return None
            key, tenant = found
            if not hmac.compare_digest(key.key_hash.encode(), digest.encode()):
                return None
            key_id, last_used = key.id, key.last_used_time
            record = tenant_record(tenant)
        now = utcnow()
        if last_used is None or now - last_used >= self._touch_interval:
            self._touch(record.id, key_id, now)
        return record

    def _touch(self, tenant_id: int, key_id: int, now: object) -> None:
        """Best effort: a failure to record usage must never fail authentication."""
        threshold = utcnow() - self._touch_interval
        try:
            with self._sessions.write() as session:
                session.execute(
                    scoped_update(ApiKey, tenant_id)
                    .where(
                        ApiKey.id == key_id,
                        or_(ApiKey.last_used_time.is_(None), ApiKey.last_used_time < threshold),
                    )
                    .values(last_used_time=now)
                )
        except SQLAlchemyError:
            log.warning("could not record last use of api key %d", key_id, exc_info=True)
