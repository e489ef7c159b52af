"""Engine settings: SQLite pragmas, thread safety under concurrent writers, utf8mb4 on MariaDB."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from service.db import Database, NewRecognition, TenantRecord


def test_sqlite_connections_are_configured(database: Database) -> None:
    if database.dialect_name != "sqlite":
        pytest.skip("SQLite only")
    with database.sessions.read() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert (session.execute(text("PRAGMA busy_timeout")).scalar() or 0) >= 5000
        assert session.execute(text("SELECT lt_lower('ÉCOLE Ab')")).scalar() == "école ab"


def test_mariadb_tables_are_utf8mb4(database: Database) -> None:
    if database.dialect_name not in ("mysql", "mariadb"):
        pytest.skip("MySQL/MariaDB only")
    with database.sessions.read() as session:
        collations = set(
            session.execute(
                text("SELECT table_collation FROM information_schema.tables WHERE table_schema = DATABASE()")
            ).scalars()
        )
    assert collations == {"utf8mb4_bin"}


def test_many_threads_write_and_read_at_once(database: Database, tenant: TenantRecord) -> None:
    """The servicers call in through asyncio.to_thread: concurrent writers must queue, not fail."""
    hotword_set = database.hotwords.create_hotword_set(tenant.id, "busy")
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(8):
                database.recognitions.create_recognition(
                    tenant.id,
                    NewRecognition(state="SUCCEEDED", model="m", transcript="😀", labels={"w": str(k)}),
                )
                database.hotwords.update_hotword_set(tenant.id, hotword_set.id, {"phrases": [f"p{k}-{i}"]})
                database.recognitions.list_recognitions(tenant.id, page_size=5)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(database.recognitions.list_recognitions(tenant.id, page_size=1000).items) == 48
    assert database.hotwords.get_hotword_set(tenant.id, hotword_set.id).version == 1 + 48
