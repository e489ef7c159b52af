"""Lingting's persistence layer: SQLAlchemy 2.0 models, Alembic migrations, tenant-scoped repositories.

No gRPC and no torch here. Open a ``Database(url)`` once per process (after ``migrate.upgrade``)
and call its repositories: ``tenants``, ``api_keys``, ``hotwords``, ``recognitions``.
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
