"""Running the Alembic history in ``migrations/``: the only way the schema is created or changed.

The service's ``migrate`` command calls ``upgrade(url)``; ``serve`` should call
``require_current(url)`` and refuse to start on an old schema rather than create tables itself.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

from service.db.errors import DbError
from service.db.session import make_engine

__all__ = [
    "MIGRATIONS_DIR",
    "SchemaOutdatedError",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "require_current",
    "upgrade",
]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(
    os.environ.get("LINGTING_MIGRATIONS_DIR", Path(__file__).resolve().parents[2] / "migrations")
)


class SchemaOutdatedError(DbError):
    """The database is not at the migration head: run ``lingting migrate`` first."""

    def __init__(self, current: str | None, head: str) -> None:
        self.current = current
        self.head = head
        super().__init__(
            f"database schema is at {current or 'nothing'}, expected {head}: run `lingting migrate`"
        )


def alembic_config(url: str | URL) -> Config:
    """An Alembic config for ``url``; the URL travels as an attribute, so '%' in passwords is safe."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["lingting_url"] = url
    return cfg


def upgrade(url: str | URL, revision: str = "head") -> None:
    log.info("upgrading database schema to %s", revision)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | URL, revision: str) -> None:
    log.info("downgrading database schema to %s", revision)
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:  # pragma: no cover - the history always has a revision
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(url: str | URL) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def require_current(url: str | URL) -> None:
    """SchemaOutdatedError unless the database is exactly at the head revision."""
    current, head = current_revision(url), head_revision()
    if current != head:
        raise SchemaOutdatedError(current, head)
