"""Column types that behave the same on SQLite, PostgreSQL and MySQL/MariaDB.

Times are stored as naive UTC with microseconds (``timestamp`` on PostgreSQL, ``DATETIME(6)`` on
MySQL, ISO text on SQLite) and come back timezone-aware; a naive datetime is refused on the way in
so a local time can never be stored by mistake. Microsecond precision matters: keyset page
tokens carry ``create_time`` and must compare equal to the stored value.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Text
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["Id", "JsonDoc", "LongText", "UtcDateTime", "dumps_json", "utcnow"]

_MYSQL = ("mysql", "mariadb")

Id = BigInteger
"""63-bit application-assigned ids (see ``service.db.ids``); never autoincrement."""

LongText: TypeEngine[str] = Text().with_variant(mysql.LONGTEXT(), *_MYSQL)
"""Unbounded text: TEXT on PostgreSQL/SQLite (1 GB), LONGTEXT on MySQL (4 GB; TEXT is only 64 KB)."""

JsonDoc: TypeEngine[Any] = JSON().with_variant(postgresql.JSONB(), "postgresql")
"""JSON document: JSONB on PostgreSQL, JSON on MySQL (LONGTEXT + json_valid on MariaDB), text on SQLite."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def dumps_json(value: Any) -> str:
    """Compact JSON that keeps Chinese readable for other readers of the tables (Java, SQL consoles)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC with microseconds in every database."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=False))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: pass a timezone-aware value")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            return value.astimezone(UTC)
        return value.replace(tzinfo=UTC)
