"""The Alembic history is the only schema path: it must build exactly the models, and undo itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from service.db import migrate
from service.db.models import Base
from service.db.session import make_engine
from tests.dbutil import BACKEND_PARAMS, fresh_database

TABLES = {"tenant", "api_key", "hotword_set", "hotword", "recognition", "recognition_label"}


def _schema_diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_upgrade_downgrade_upgrade_matches_models(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        with pytest.raises(migrate.SchemaOutdatedError):
            migrate.require_current(url)

        migrate.upgrade(url)
        assert _tables(url) == TABLES | {"alembic_version"}
        assert migrate.current_revision(url) == migrate.head_revision()
        migrate.require_current(url)
        assert _schema_diff(url) == []

        migrate.downgrade(url, "base")
        assert _tables(url) <= {"alembic_version"}
        assert migrate.current_revision(url) is None

        migrate.upgrade(url)
        assert _schema_diff(url) == []
        migrate.require_current(url)


def test_indexes_for_history_queries(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            insp = inspect(engine)
            indexes = {i["name"]: i["column_names"] for i in insp.get_indexes("recognition")}
            uniques = {u["name"]: u["column_names"] for u in insp.get_unique_constraints("recognition")}
            labels = {i["name"]: i["column_names"] for i in insp.get_indexes("recognition_label")}
        finally:
            engine.dispose()
    assert indexes["ix_recognition_history"] == ["tenant_id", "deleted", "create_time", "id"]
    assert indexes["ix_recognition_state"][:3] == ["tenant_id", "deleted", "state"]
    assert uniques["uq_recognition_request_id"] == ["tenant_id", "request_id", "deleted_token"]
    assert labels["ix_recognition_label_lookup"] == [
        "tenant_id",
        "label_key",
        "label_value",
        "recognition_id",
    ]


def test_every_table_has_the_common_columns() -> None:
    for table in Base.metadata.sorted_tables:
        columns = set(table.columns.keys())
        assert {"id", "create_time", "update_time", "deleted", "version"} <= columns, table.name
        if table.name != "tenant":
            assert "tenant_id" in columns, table.name


def test_schema_comparison_detects_drift(tmp_path: Path) -> None:
    """Guards the comparison above: a column the migrations lack must show up as a difference."""
    from sqlalchemy import Column, MetaData, String

    drifted = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["tenant"].append_column(Column("nickname", String(10)))
    with fresh_database("sqlite", tmp_path) as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), drifted)
        finally:
            engine.dispose()
    assert [d[0] for d in diff] == ["add_column"]
