"""Frozen records the repositories return; ORM objects never leave a session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

__all__ = [
    "ApiKeyRecord",
    "HotwordRecord",
    "HotwordSetRecord",
    "Page",
    "RecognitionRecord",
    "TenantRecord",
    "etag_for",
]

T = TypeVar("T")


def etag_for(row_id: int, version: int) -> str:
    """Opaque etag of one version of one row; the id part keeps a re-created row's etags distinct."""
    return f"{row_id:x}-{version}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Page(Generic[T]):
    """One page of a listing; ``next_page_token`` is "" on the last page."""

    items: tuple[T, ...]
    next_page_token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantRecord:
    id: int
    display_name: str
    create_time: datetime
    update_time: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyRecord:
    """An API key without its secret (only a hash is stored; the secret is shown once at creation)."""

    id: int
    tenant_id: int
    display_name: str
    key_prefix: str
    create_time: datetime
    revoke_time: datetime | None
    last_used_time: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoke_time is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class HotwordRecord:
    phrase: str
    boost: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HotwordSetRecord:
    id: int
    tenant_id: int
    name: str
    display_name: str
    language: str
    tenant_default: bool
    phrases: tuple[HotwordRecord, ...]
    version: int
    create_time: datetime
    update_time: datetime

    @property
    def etag(self) -> str:
        return etag_for(self.id, self.version)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecognitionRecord:
    id: int
    tenant_id: int
    request_id: str | None
    state: str
    model: str
    language: str
    audio_duration_ms: int
    processing_ms: int
    transcript: str
    transcript_raw: str
    config: dict[str, Any]
    labels: dict[str, str]
    segments: list[dict[str, Any]]
    applied_hotwords: list[Any]
    warnings: list[Any]
    error: str | None
    create_time: datetime
    update_time: datetime
