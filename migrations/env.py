"""Alembic environment: where the URL comes from and how migrations run.

URL, first found: the ``lingting_url`` attribute set by ``service.db.migrate``, then the
``LINGTING_DATABASE_URL`` environment variable, then ``sqlalchemy.url`` in the ini file, then the
default SQLite file ``var/lingting.db``. Engines come from ``service.db.session.make_engine`` so
migrations see the same connection settings as the service (utf8mb4, SQLite pragmas).
"""

from __future__ import annotations

import logging.config
import os
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import context
from sqlalchemy import Connection, text

from service.db.models import Base
from service.db.session import make_engine

config = context.config
if config.config_file_name is not None and not config.attributes.get("lingting_url"):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("lingting_url") or os.environ.get("LINGTING_DATABASE_URL")
    if not url:
        url = config.get_main_option("sqlalchemy.url") or "sqlite:///var/lingting.db"
    return str(url) if not hasattr(url, "render_as_string") else url.render_as_string(hide_password=False)


def run_offline() -> None:
    """Emit SQL instead of running it (``alembic upgrade head --sql``)."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


_LOCK_NAME = "lingting_migrate"
_LOCK_KEY = 0x4C696E6774696E67  # "Lingting": PostgreSQL advisory locks take a 64-bit key


@contextmanager
def _migration_lock(connection: Connection) -> Iterator[None]:
    """Serialise concurrent ``migrate`` runs (replicas starting together) on the server databases."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
    elif dialect in ("mysql", "mariadb"):
        connection.execute(text("SELECT GET_LOCK(:n, 300)"), {"n": _LOCK_NAME})
    connection.commit()
    try:
        yield
    finally:
        if dialect == "postgresql":
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
        elif dialect in ("mysql", "mariadb"):
            connection.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": _LOCK_NAME})
        connection.commit()


def run_online() -> None:
    engine = make_engine(_url())
    try:
        with engine.connect() as connection, _migration_lock(connection):
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                # Our SQLite engine emits BEGIN itself, so DDL there is transactional too.
                transactional_ddl=connection.dialect.name not in ("mysql", "mariadb"),
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
