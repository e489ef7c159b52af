"""The persistence layer's exception tree; the service maps each class to one gRPC status.

Suggested mapping: NotFoundError -> NOT_FOUND, AlreadyExistsError -> ALREADY_EXISTS,
StaleEtagError -> ABORTED, InvalidPageTokenError and InvalidValueError -> INVALID_ARGUMENT,
DuplicateRequestError -> replay ``existing`` (or ALREADY_EXISTS when the request differs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.db.records import RecognitionRecord

__all__ = [
    "AlreadyExistsError",
    "DbError",
    "DuplicateRequestError",
    "InvalidPageTokenError",
    "InvalidValueError",
    "NotFoundError",
    "StaleEtagError",
]


class DbError(Exception):
    """Base of every error the persistence layer raises on purpose."""


class NotFoundError(DbError):
    """No live row of ``kind`` with these keys in the caller's tenant.

    Another tenant's row is reported exactly like a missing one.
    """

    def __init__(self, kind: str, keys: Sequence[object]) -> None:
        self.kind = kind
        self.keys = tuple(keys)
        shown = ", ".join(repr(k) for k in self.keys)
        super().__init__(f"{kind} not found: {shown}")


class AlreadyExistsError(DbError):
    """A live row of ``kind`` already holds this unique key (e.g. a hotword set name)."""

    def __init__(self, kind: str, key: object) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} already exists: {key!r}")


class StaleEtagError(DbError):
    """The caller's etag no longer matches the row: someone else changed it first (optimistic locking)."""

    def __init__(self, kind: str, key: object, expected: str, current: str) -> None:
        self.kind = kind
        self.key = key
        self.expected = expected
        self.current = current
        super().__init__(f"{kind} {key!r} was modified: etag {expected!r} is stale (current {current!r})")


class InvalidPageTokenError(DbError):
    """The page token is malformed, or was issued for another query, tenant or filter."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"invalid page_token: {reason}")


class InvalidValueError(DbError):
    """A value breaks a storage limit (length, count); ``field`` names it.

    The service should validate against ``service.db.limits`` first; this is the last line of defence.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class DuplicateRequestError(DbError):
    """A live recognition with this ``request_id`` already exists in the tenant; ``existing`` is that row."""

    def __init__(self, request_id: str, existing: RecognitionRecord) -> None:
        self.request_id = request_id
        self.existing = existing
        super().__init__(f"request_id {request_id!r} was already used by recognition {existing.id}")
