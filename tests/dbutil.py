"""Fresh, uniquely named databases for tests, on SQLite, PostgreSQL and MariaDB/MySQL.

Usable from any test package::

    from tests.dbutil import BACKEND_PARAMS, migrated_database

    @pytest.fixture(scope="session", params=BACKEND_PARAMS)
    def db_url(request, tmp_path_factory):
        with migrated_database(request.param, tmp_path_factory.mktemp("db")) as url:
            yield url

Servers: PostgreSQL at ``LINGTING_TEST_PG_URL`` (default postgres@127.0.0.1:5432/test, trust auth)
and MariaDB at ``LINGTING_TEST_MYSQL_URL`` (default root@127.0.0.1:3306, empty password). An
unreachable server fails the test, unless ``LINGTING_SKIP_EXTERNAL_DB=1`` turns that into a skip.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from service.db import migrate

__all__ = [
    "BACKENDS",
    "BACKEND_PARAMS",
    "EXTERNAL_BACKENDS",
    "fresh_database",
    "migrated_database",
    "skip_external",
]

BACKENDS = ("sqlite", "postgresql", "mariadb")
EXTERNAL_BACKENDS = ("postgresql", "mariadb")
BACKEND_PARAMS = [pytest.param(b, marks=[pytest.mark.db] if b in EXTERNAL_BACKENDS else []) for b in BACKENDS]

PG_ADMIN_URL = os.environ.get("LINGTING_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_ADMIN_URL = os.environ.get("LINGTING_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/")


def skip_external() -> bool:
    return os.environ.get("LINGTING_SKIP_EXTERNAL_DB", "") == "1"


def _unavailable(backend: str, exc: Exception) -> None:
    message = f"{backend} test server unreachable ({exc.__class__.__name__}: {exc})"
    if skip_external():
        pytest.skip(message)
    pytest.fail(message + "; run scripts/test_setup.sh or set LINGTING_SKIP_EXTERNAL_DB=1", pytrace=False)


@contextmanager
def fresh_database(backend: str, tmp_dir: Path) -> Iterator[str]:
    """An empty database of ``backend`` that exists only inside the block; yields its URL."""
    name = f"lt_test_{os.getpid()}_{secrets.token_hex(4)}"
    if backend == "sqlite":
        yield f"sqlite:///{tmp_dir / (name + '.db')}"
        return
    admin_url = PG_ADMIN_URL if backend == "postgresql" else MYSQL_ADMIN_URL
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        try:
            with admin.connect() as conn:
                if backend == "postgresql":
                    conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
                else:
                    conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
        except OperationalError as exc:
            _unavailable(backend, exc)
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        try:
            yield url
        finally:
            with admin.connect() as conn:
                if backend == "postgresql":
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                else:
                    conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        admin.dispose()


@contextmanager
def migrated_database(backend: str, tmp_dir: Path) -> Iterator[str]:
    """Like ``fresh_database``, upgraded to the migration head."""
    with fresh_database(backend, tmp_dir) as url:
        migrate.upgrade(url)
        yield url
