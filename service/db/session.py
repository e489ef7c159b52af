"""Engines and transactions for the three supported databases.

``make_engine`` hides the per-database settings: SQLite gets WAL, foreign keys, a busy timeout,
cross-thread use and ``BEGIN IMMEDIATE`` for write transactions (a deferred transaction that
reads and then writes fails at once under WAL when another writer got in between; taking the
write lock up front makes it wait instead). MySQL/MariaDB get utf8mb4 and READ COMMITTED
(the PostgreSQL default, so the compare-and-set updates behave alike). Engines and
``Sessions`` are thread-safe; every call opens its own short session, so the servicers can
call the repositories through ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

from service.db.coltypes import dumps_json

__all__ = ["Sessions", "default_sqlite_url", "make_engine"]

log = logging.getLogger(__name__)

_WRITE_OPTION = "lingting_write"
SQLITE_BUSY_TIMEOUT_MS = 15_000


def default_sqlite_url(data_dir: str | Path) -> str:
    """The default database: a SQLite file ``lingting.db`` in the service's data directory."""
    return f"sqlite:///{Path(data_dir).resolve() / 'lingting.db'}"


def make_engine(url: str | URL, *, echo: bool = False, pool_size: int = 10) -> Engine:
    """An engine for ``url`` (sqlite://, postgresql+psycopg://, mysql+pymysql:// or mariadb+pymysql://)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {"echo": echo, "json_serializer": dumps_json}
    if backend == "sqlite":
        return _sqlite_engine(parsed, kwargs)
    kwargs.update(pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
    if backend in ("mysql", "mariadb"):
        if "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        kwargs["isolation_level"] = "READ COMMITTED"
    elif backend != "postgresql":
        log.warning("database backend %r is not one of sqlite, postgresql, mysql/mariadb", backend)
    return create_engine(parsed, **kwargs)


def _sqlite_engine(url: URL, kwargs: dict[str, Any]) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself (pysqlite's implicit one is deferred).
        dbapi_conn.isolation_level = None
        dbapi_conn.create_function("lt_lower", 1, _lower, deterministic=True)
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _lower(value: object) -> object:
    """Unicode-aware lower() for SQLite, whose built-in one folds ASCII only."""
    return value.lower() if isinstance(value, str) else value


class Sessions:
    """Hands out one-transaction sessions; thread-safe. Objects stay readable after commit."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect_name = engine.dialect.name
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._write = sessionmaker(engine.execution_options(**{_WRITE_OPTION: True}), expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A transaction that only reads (commits at the end; nothing to commit)."""
        with self._read.begin() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that writes: committed when the block ends, rolled back on an exception."""
        with self._write.begin() as session:
            yield session
