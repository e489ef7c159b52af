"""Reading and deleting a tenant's stored recognitions."""

from __future__ import annotations

import asyncio

from service.db import Database, Page, RecognitionFilter, RecognitionRecord
from service.errors import ApiError

__all__ = ["HistoryUseCases"]


class HistoryUseCases:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, tenant_id: int, recognition_id: int) -> RecognitionRecord:
        return await asyncio.to_thread(self._db.recognitions.get_recognition, tenant_id, recognition_id)

    async def list(
        self, tenant_id: int, query: RecognitionFilter, page_size: int, page_token: str
    ) -> Page[RecognitionRecord]:
        if page_size < 0:
            raise ApiError.invalid("page_size", "must not be negative")
        start, end = query.create_time_from, query.create_time_to
        if start is not None and end is not None and end < start:
            raise ApiError.invalid("create_time_end", "is before create_time_start")
        return await asyncio.to_thread(
            self._db.recognitions.list_recognitions, tenant_id, query, page_size, page_token
        )

    async def delete(self, tenant_id: int, recognition_id: int) -> None:
        await asyncio.to_thread(self._db.recognitions.delete_recognition, tenant_id, recognition_id)
