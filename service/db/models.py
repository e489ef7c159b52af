"""ORM models: the schema as Python sees it. The database gets it only through ``migrations/``.

Conventions (MyBatis-Plus friendly): singular snake_case tables, a BIGINT ``id`` assigned by the
application, ``tenant_id`` on every row but ``tenant``'s own, UTC ``create_time``/``update_time``,
``deleted`` 0/1 (logical delete), ``version`` (optimistic locking, starts at 1). Tables whose
unique keys must be reusable after a logical delete add ``deleted_token``: 0 while live, the
row's id once deleted, and the unique key includes it (works on all three databases, unlike
partial indexes). Child rows (hotword, recognition_label) live and die with their parent.
A test compares this metadata with the migrated schema on every supported database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.db import limits
from service.db.coltypes import JsonDoc, LongText, UtcDateTime

__all__ = [
    "ApiKey",
    "Base",
    "Hotword",
    "HotwordSet",
    "Recognition",
    "RecognitionLabel",
    "Tenant",
]

MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",  # exact comparisons, as on PostgreSQL and SQLite
}


class Base(DeclarativeBase):
    metadata = MetaData()


class _Row:
    """Columns every table carries."""

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False, sort_order=-10)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, sort_order=10)
    update_time: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, sort_order=10)
    deleted: Mapped[int] = mapped_column(
        SmallInteger, nullable=False, default=0, server_default="0", sort_order=10
    )
    version: Mapped[int] = mapped_column(
        Integer, nullable=False, default=1, server_default="1", sort_order=10
    )


class Tenant(_Row, Base):
    __tablename__ = "tenant"
    __table_args__ = (MYSQL_TABLE_OPTIONS,)

    display_name: Mapped[str] = mapped_column(String(limits.TENANT_DISPLAY_NAME_MAX), nullable=False)


class ApiKey(_Row, Base):
    __tablename__ = "api_key"
    __table_args__ = (
        UniqueConstraint("key_hash", name="uq_api_key_key_hash"),
        Index("ix_api_key_tenant", "tenant_id", "deleted", "id"),
        MYSQL_TABLE_OPTIONS,
    )

    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tenant.id", name="fk_api_key_tenant"), nullable=False
    )
    display_name: Mapped[str] = mapped_column(String(limits.API_KEY_DISPLAY_NAME_MAX), nullable=False)
    key_prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    revoke_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_used_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class HotwordSet(_Row, Base):
    __tablename__ = "hotword_set"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", "deleted_token", name="uq_hotword_set_name"),
        Index("ix_hotword_set_tenant", "tenant_id", "deleted", "tenant_default"),
        MYSQL_TABLE_OPTIONS,
    )

    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tenant.id", name="fk_hotword_set_tenant"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(limits.HOTWORD_SET_NAME_MAX), nullable=False)
    display_name: Mapped[str] = mapped_column(String(limits.HOTWORD_SET_DISPLAY_NAME_MAX), nullable=False)
    language: Mapped[str] = mapped_column(String(limits.LANGUAGE_MAX), nullable=False)
    tenant_default: Mapped[bool] = mapped_column(Boolean, nullable=False)
    deleted_token: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")


class Hotword(_Row, Base):
    __tablename__ = "hotword"
    __table_args__ = (
        Index("ix_hotword_set_ordinal", "hotword_set_id", "ordinal"),
        MYSQL_TABLE_OPTIONS,
    )

    tenant_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    hotword_set_id: Mapped[int] = mapped_column(
        BigInteger,
        ForeignKey("hotword_set.id", name="fk_hotword_hotword_set", ondelete="CASCADE"),
        nullable=False,
    )
    ordinal: Mapped[int] = mapped_column(Integer, nullable=False)
    phrase: Mapped[str] = mapped_column(String(limits.HOTWORD_PHRASE_MAX), nullable=False)
    boost: Mapped[float | None] = mapped_column(Double, nullable=True)


class Recognition(_Row, Base):
    __tablename__ = "recognition"
    __table_args__ = (
        Index("ix_recognition_history", "tenant_id", "deleted", "create_time", "id"),
        Index("ix_recognition_state", "tenant_id", "deleted", "state", "create_time"),
        UniqueConstraint("tenant_id", "request_id", "deleted_token", name="uq_recognition_request_id"),
        MYSQL_TABLE_OPTIONS,
    )

    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tenant.id", name="fk_recognition_tenant"), nullable=False
    )
    request_id: Mapped[str | None] = mapped_column(String(limits.REQUEST_ID_MAX), nullable=True)
    state: Mapped[str] = mapped_column(String(limits.STATE_MAX), nullable=False)
    model: Mapped[str] = mapped_column(String(limits.MODEL_MAX), nullable=False)
    language: Mapped[str] = mapped_column(String(limits.LANGUAGE_MAX), nullable=False)
    audio_duration_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    processing_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    transcript: Mapped[str] = mapped_column(LongText, nullable=False)
    transcript_raw: Mapped[str] = mapped_column(LongText, nullable=False)
    config: Mapped[Any] = mapped_column(JsonDoc, nullable=False)
    labels: Mapped[Any] = mapped_column(JsonDoc, nullable=False)
    segments: Mapped[Any] = mapped_column(JsonDoc, nullable=False)
    applied_hotwords: Mapped[Any] = mapped_column(JsonDoc, nullable=False)
    warnings: Mapped[Any] = mapped_column(JsonDoc, nullable=False)
    error_message: Mapped[str | None] = mapped_column(LongText, nullable=True)
    deleted_token: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")


class RecognitionLabel(_Row, Base):
    """One row per label of a recognition, so ``key=value`` filters use an index on every database."""

    __tablename__ = "recognition_label"
    __table_args__ = (
        Index("ix_recognition_label_lookup", "tenant_id", "label_key", "label_value", "recognition_id"),
        Index("ix_recognition_label_recognition", "recognition_id"),
        MYSQL_TABLE_OPTIONS,
    )

    tenant_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    recognition_id: Mapped[int] = mapped_column(
        BigInteger,
        ForeignKey("recognition.id", name="fk_recognition_label_recognition", ondelete="CASCADE"),
        nullable=False,
    )
    label_key: Mapped[str] = mapped_column(String(limits.LABEL_KEY_MAX), nullable=False)
    label_value: Mapped[str] = mapped_column(String(limits.LABEL_VALUE_MAX), nullable=False)
