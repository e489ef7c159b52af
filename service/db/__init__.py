"""Lingting's persistence layer: SQLAlchemy 2.0 models, Alembic migrations, tenant-scoped repositories.

No gRPC and no torch here. Migrate with ``upgrade(url)``, check with ``require_current(url)``, then
open one ``Database(url)`` per process and call its repositories (sync, thread-safe, one
transaction per call; use ``asyncio.to_thread`` from async code):

- ``db.tenants``: create_tenant, get_tenant, list_tenants, delete_tenant
- ``db.api_keys``: create_api_key -> (record, secret shown once), get_api_key, list_api_keys,
  revoke_api_key, authenticate(secret) -> TenantRecord | None
- ``db.hotwords``: create_hotword_set, get_hotword_set(id | name), list_hotword_sets,
  update_hotword_set(changes, expected_etag) (StaleEtagError), delete_hotword_set,
  default_hotword_sets, resolve_hotword_sets(ids and names) (NotFoundError lists the missing)
- ``db.recognitions``: create_recognition(NewRecognition) (DuplicateRequestError carries the
  existing row), get_recognition, find_by_request_id, list_recognitions(RecognitionFilter,
  page_size, page_token), delete_recognition

Every read of tenant data is scoped by ``tenant_id``: another tenant's row raises the same
NotFoundError as a missing one, and page tokens are bound to tenant and filter. Storage limits
the service should validate first are in ``service.db.limits``. Errors: ``service.db.errors``.
"""

from __future__ import annotations

from service.db.database import Database
from service.db.errors import (
    AlreadyExistsError,
    DbError,
    DuplicateRequestError,
    InvalidPageTokenError,
    InvalidValueError,
    NotFoundError,
    StaleEtagError,
)
from service.db.hotwords import UPDATABLE_FIELDS, PhraseInput
from service.db.migrate import SchemaOutdatedError, current_revision, downgrade, require_current, upgrade
from service.db.recognitions import NewRecognition, RecognitionFilter
from service.db.records import (
    ApiKeyRecord,
    HotwordRecord,
    HotwordSetRecord,
    Page,
    RecognitionRecord,
    TenantRecord,
)
from service.db.session import default_sqlite_url, make_engine

__all__ = [
    "UPDATABLE_FIELDS",
    "AlreadyExistsError",
    "ApiKeyRecord",
    "Database",
    "DbError",
    "DuplicateRequestError",
    "HotwordRecord",
    "HotwordSetRecord",
    "InvalidPageTokenError",
    "InvalidValueError",
    "NewRecognition",
    "NotFoundError",
    "Page",
    "PhraseInput",
    "RecognitionFilter",
    "RecognitionRecord",
    "SchemaOutdatedError",
    "StaleEtagError",
    "TenantRecord",
    "current_revision",
    "default_sqlite_url",
    "downgrade",
    "make_engine",
    "require_current",
    "upgrade",
]
