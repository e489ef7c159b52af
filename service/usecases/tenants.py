"""Operator use cases: tenants and their API keys (TenantService and the CLI)."""

from __future__ import annotations

import asyncio

from service.auth import Authenticator
from service.db import ApiKeyRecord, Database, Page, TenantRecord
from service.errors import ApiError

__all__ = ["TenantUseCases"]


class TenantUseCases:
    def __init__(self, db: Database, authenticator: Authenticator | None = None) -> None:
        self._db = db
        self._auth = authenticator

    async def create_tenant(self, display_name: str) -> TenantRecord:
        return await asyncio.to_thread(self._db.tenants.create_tenant, display_name)

    async def list_tenants(self, page_size: int, page_token: str) -> Page[TenantRecord]:
        if page_size < 0:
            raise ApiError.invalid("page_size", "must not be negative")
        return await asyncio.to_thread(self._db.tenants.list_tenants, page_size, page_token)

    async def create_api_key(self, tenant_id: int, display_name: str) -> tuple[ApiKeyRecord, str]:
        return await asyncio.to_thread(self._db.api_keys.create_api_key, tenant_id, display_name)

    async def list_api_keys(self, tenant_id: int, page_size: int, page_token: str) -> Page[ApiKeyRecord]:
        if page_size < 0:
            raise ApiError.invalid("page_size", "must not be negative")
        await asyncio.to_thread(self._db.tenants.get_tenant, tenant_id)  # NOT_FOUND for an unknown tenant
        return await asyncio.to_thread(self._db.api_keys.list_api_keys, tenant_id, page_size, page_token)

    async def revoke_api_key(self, tenant_id: int, key_id: int) -> ApiKeyRecord:
        record = await asyncio.to_thread(self._db.api_keys.revoke_api_key, tenant_id, key_id)
        if self._auth is not None:
            self._auth.invalidate_tenant(tenant_id)
        return record
