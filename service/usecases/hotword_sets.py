"""Managing a tenant's stored hotword sets."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from service.db import Database, HotwordRecord, HotwordSetRecord, Page
from service.errors import ApiError
from service.names import HOTWORD_SET_ID_RE
from service.usecases.hotword_merge import DefaultSetsCache

__all__ = ["UPDATE_PATHS", "HotwordSetUseCases"]

# update_mask path -> repository field.
UPDATE_PATHS = {
    "display_name": "display_name",
    "language_code": "language",
    "tenant_default": "tenant_default",
    "phrases": "phrases",
}


class HotwordSetUseCases:
    def __init__(self, db: Database, defaults: DefaultSetsCache | None = None) -> None:
        self._db = db
        self._defaults = defaults

    def _changed(self, tenant_id: int) -> None:
        if self._defaults is not None:
            self._defaults.invalidate(tenant_id)

    async def create(
        self,
        tenant_id: int,
        set_id: str,
        *,
        display_name: str,
        language: str,
        tenant_default: bool,
        phrases: Sequence[HotwordRecord],
    ) -> HotwordSetRecord:
        if not set_id:
            raise ApiError.invalid("hotword_set_id", "is required")
        if not HOTWORD_SET_ID_RE.match(set_id):
            raise ApiError.invalid(
                "hotword_set_id",
                "must be 1-63 lowercase letters, digits or hyphens, start with a letter, not end in a hyphen",
            )
        try:
            return await asyncio.to_thread(
                self._db.hotwords.create_hotword_set,
                tenant_id,
                set_id,
                display_name=display_name,
                language=language,
                tenant_default=tenant_default,
                phrases=list(phrases),
            )
        finally:
            self._changed(tenant_id)

    async def get(self, tenant_id: int, ref: int | str) -> HotwordSetRecord:
        return await asyncio.to_thread(self._db.hotwords.get_hotword_set, tenant_id, ref)

    async def list(
        self, tenant_id: int, page_size: int, page_token: str, tenant_default: bool | None
    ) -> Page[HotwordSetRecord]:
        if page_size < 0:
            raise ApiError.invalid("page_size", "must not be negative")
        return await asyncio.to_thread(
            self._db.hotwords.list_hotword_sets,
            tenant_id,
            page_size,
            page_token,
            tenant_default=tenant_default,
        )

    async def update(
        self, tenant_id: int, ref: int | str, changes: Mapping[str, Any], etag: str
    ) -> HotwordSetRecord:
        """``changes`` uses update_mask paths (see UPDATE_PATHS); an empty etag skips the check."""
        fields = {UPDATE_PATHS[path]: value for path, value in changes.items()}
        current = await self.get(tenant_id, ref)
        try:
            return await asyncio.to_thread(
                self._db.hotwords.update_hotword_set, tenant_id, current.id, fields, etag or None
            )
        finally:
            self._changed(tenant_id)

    async def delete(self, tenant_id: int, ref: int | str, etag: str) -> None:
        current = await self.get(tenant_id, ref)
        try:
            await asyncio.to_thread(self._db.hotwords.delete_hotword_set, tenant_id, current.id, etag or None)
        finally:
            self._changed(tenant_id)
