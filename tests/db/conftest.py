"""Fixtures for the persistence tests: one migrated database per backend per session.

Tests share each database but never each other's tenants: every test creates its own, and every
query is tenant-scoped, so tests stay independent without a fresh database each.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.db import Database, TenantRecord
from tests.dbutil import BACKEND_PARAMS, migrated_database


@pytest.fixture(scope="session", params=BACKEND_PARAMS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("db")
    with migrated_database(request.param, tmp) as url:
        yield url


@pytest.fixture(scope="session")
def database(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def tenant(database: Database) -> TenantRecord:
    return database.tenants.create_tenant("tenant A")


@pytest.fixture
def other_tenant(database: Database) -> TenantRecord:
    return database.tenants.create_tenant("tenant B")
