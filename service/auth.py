"""API key and admin token checks, with a short in-process cache in front of the database.

A key's tenant is cached for ``ttl_s`` seconds (keyed by a hash of the secret, never the secret),
so most calls cost no query. Revoking a key through this server drops its tenant's entries at
once; other replicas stop accepting it within ``ttl_s``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time

from service.db import Database, TenantRecord

__all__ = ["Authenticator"]

log = logging.getLogger(__name__)

_MAX_ENTRIES = 10_000


class Authenticator:
    def __init__(self, db: Database, *, admin_token: str | None, ttl_s: float = 30.0) -> None:
        self._db = db
        self._admin = admin_token.encode() if admin_token else None
        self._ttl_s = ttl_s
        self._cache: dict[bytes, tuple[TenantRecord, float]] = {}

    @property
    def admin_enabled(self) -> bool:
        return self._admin is not None

    def is_admin(self, token: str) -> bool:
        """Constant-time comparison with the configured admin token (False when none is set)."""
        return self._admin is not None and hmac.compare_digest(token.encode(), self._admin)

    async def tenant_for(self, secret: str) -> TenantRecord | None:
        """The tenant of a live, unrevoked API key, or None."""
        digest = hashlib.sha256(secret.encode()).digest()
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        tenant = await asyncio.to_thread(self._db.api_keys.authenticate, secret)
        if tenant is None:
            self._cache.pop(digest, None)
            return None
        if len(self._cache) >= _MAX_ENTRIES:
            self._evict(now)
        self._cache[digest] = (tenant, now + self._ttl_s)
        return tenant

    def invalidate_tenant(self, tenant_id: int) -> None:
        """Forget every cached key of a tenant (after one of its keys was revoked)."""
        for digest in [d for d, (t, _) in self._cache.items() if t.id == tenant_id]:
            self._cache.pop(digest, None)

    def _evict(self, now: float) -> None:
        for digest in [d for d, (_, expiry) in self._cache.items() if expiry <= now]:
            self._cache.pop(digest, None)
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()
