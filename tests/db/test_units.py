"""Database-free pieces of service.db: ids, page tokens, time columns, the public face."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.dialects import mysql, postgresql, sqlite

import service.db
from service.db import InvalidPageTokenError, default_sqlite_url
from service.db.coltypes import UtcDateTime
from service.db.ids import EPOCH_MS, IdGenerator
from service.db.paging import clamp_page_size, decode_token, encode_token, fingerprint
from service.db.records import etag_for


def test_ids_are_unique_increasing_and_carry_time_and_worker() -> None:
    gen = IdGenerator(worker_id=37)
    ids = [gen.next_id() for _ in range(20_000)]  # several milliseconds' worth of sequence overflow
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(0 < i < 2**63 for i in ids)
    assert {(i >> 12) & 0x3FF for i in ids} == {37}
    minted_ms = (ids[-1] >> 22) + EPOCH_MS
    assert abs(minted_ms - datetime.now(UTC).timestamp() * 1000) < 5_000


def test_ids_are_unique_across_threads() -> None:
    gen = IdGenerator(worker_id=1)
    out: list[list[int]] = [[] for _ in range(4)]

    def mint(k: int) -> None:
        out[k].extend(gen.next_id() for _ in range(3000))

    threads = [threading.Thread(target=mint, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for chunk in out for i in chunk]
    assert len(set(every)) == 12_000


def test_worker_id_range_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError):
        IdGenerator(worker_id=1024)
    monkeypatch.setenv("LINGTING_WORKER_ID", "5")
    assert IdGenerator().worker_id == 5
    monkeypatch.setenv("LINGTING_WORKER_ID", "-1")
    with pytest.raises(ValueError):
        IdGenerator()


def test_page_tokens_round_trip_and_are_bound_to_their_query() -> None:
    fp = fingerprint("recognition", 7, {"labels": [["a", "b"]]})
    moment = datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    token = encode_token(fp, [moment, 42])
    assert token.isascii() and "=" not in token
    assert decode_token(token, fp, (datetime, int)) == [moment, 42]
    for other in (
        fingerprint("recognition", 8, {"labels": [["a", "b"]]}),  # another tenant
        fingerprint("recognition", 7, {"labels": [["a", "c"]]}),  # another filter
        fingerprint("hotword_set", 7, {"labels": [["a", "b"]]}),  # another listing
    ):
        with pytest.raises(InvalidPageTokenError):
            decode_token(token, other, (datetime, int))
    for bad in (
        "",
        "!!!",
        "e30",
        token[:-2],
        "x" * 5000,
        encode_token(fp, ["2030", 1]),
        encode_token(fp, [1]),
    ):
        with pytest.raises(InvalidPageTokenError):
            decode_token(bad, fp, (datetime, int))
    with pytest.raises(InvalidPageTokenError):  # bool is not an id
        decode_token(encode_token(fp, [True]), fp, (int,))


def test_page_size_defaults_and_caps() -> None:
    assert clamp_page_size(0) == clamp_page_size(-3) == 50
    assert clamp_page_size(7) == 7
    assert clamp_page_size(10**9) == 1000


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect(), mysql.dialect()])
def test_times_are_stored_as_naive_utc_and_read_back_aware(dialect: object) -> None:
    col = UtcDateTime()
    shanghai = timezone(timedelta(hours=8))
    local = datetime(2030, 1, 1, 8, 0, 0, 500, tzinfo=shanghai)
    stored = col.process_bind_param(local, dialect)  # type: ignore[arg-type]
    assert stored == datetime(2030, 1, 1, 0, 0, 0, 500)
    back = col.process_result_value(stored, dialect)  # type: ignore[arg-type]
    assert back == local and back is not None and back.utcoffset() == timedelta(0)
    with pytest.raises(ValueError):
        col.process_bind_param(datetime(2030, 1, 1), dialect)  # type: ignore[arg-type]


def test_etag_changes_with_version_and_row() -> None:
    assert len({etag_for(1, 1), etag_for(1, 2), etag_for(2, 1)}) == 3


def test_default_sqlite_url(tmp_path: Path) -> None:
    assert default_sqlite_url(tmp_path) == f"sqlite:///{tmp_path.resolve()}/lingting.db"


def test_public_api_is_pinned() -> None:
    assert sorted(service.db.__all__) == sorted(
        [
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
    )
    for name in service.db.__all__:
        assert hasattr(service.db, name), name
    assert all(
        issubclass(getattr(service.db, e), service.db.DbError)
        for e in service.db.__all__
        if e.endswith("Error")
    )


def test_service_db_imports_neither_grpc_nor_torch() -> None:
    import ast

    root = Path(service.db.__file__).parent
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert name.split(".")[0] not in {"grpc", "torch", "asr_engine"}, (path.name, name)
