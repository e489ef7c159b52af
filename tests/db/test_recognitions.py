"""Recognition history on every database: idempotency, filters, keyset paging, limits, isolation."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from service.db import (
    Database,
    DuplicateRequestError,
    InvalidPageTokenError,
    InvalidValueError,
    NewRecognition,
    NotFoundError,
    RecognitionFilter,
    RecognitionRecord,
    TenantRecord,
    limits,
)
from service.db.models import Recognition


def _new(**overrides: object) -> NewRecognition:
    fields: dict[str, object] = {
        "state": "SUCCEEDED",
        "model": "paraformer-zh",
        "language": "zh",
        "audio_duration_ms": 3200,
        "processing_ms": 41,
        "transcript": "今天天气很好。",
        "transcript_raw": "今天 天气 很 好",
        "config": {"enable_punctuation": True, "hotwords": [{"phrase": "灵听", "boost": 2.0}]},
        "labels": {"call_id": "c-1"},
        "segments": [{"start_ms": 0, "end_ms": 3200, "text": "今天天气很好。", "words": []}],
        "applied_hotwords": ["灵听"],
        "warnings": [],
    }
    fields.update(overrides)
    return NewRecognition(**fields)  # type: ignore[arg-type]


def _all_pages(
    database: Database, tenant_id: int, query: RecognitionFilter, size: int
) -> list[RecognitionRecord]:
    items: list[RecognitionRecord] = []
    token = ""
    for _ in range(100):
        page = database.recognitions.list_recognitions(tenant_id, query, page_size=size, page_token=token)
        assert len(page.items) <= size
        items += page.items
        token = page.next_page_token
        if not token:
            return items
    raise AssertionError("paging did not terminate")


def test_create_get_round_trip(database: Database, tenant: TenantRecord) -> None:
    new = _new(error=None, labels={"call_id": "c-1", "客户": "张三"})
    created = database.recognitions.create_recognition(tenant.id, new)
    got = database.recognitions.get_recognition(tenant.id, created.id)
    assert got == created
    assert got.transcript == new.transcript and got.labels == {"call_id": "c-1", "客户": "张三"}
    assert got.segments == [dict(s) for s in new.segments] and got.config == dict(new.config)
    assert got.create_time.tzinfo is not None
    assert abs(got.create_time - datetime.now(UTC)) < timedelta(minutes=1)


def test_long_transcript_and_failed_state(database: Database, tenant: TenantRecord) -> None:
    text = "长" * 300_000 + "end"  # about 1 MB of UTF-8, beyond MySQL's TEXT
    created = database.recognitions.create_recognition(
        tenant.id, _new(state="FAILED", transcript=text, error="decoder exploded: " + "x" * 60_000)
    )
    got = database.recognitions.get_recognition(tenant.id, created.id)
    assert got.transcript == text and got.state == "FAILED" and got.error is not None


def test_request_id_is_idempotent_per_tenant(
    database: Database, tenant: TenantRecord, other_tenant: TenantRecord
) -> None:
    first = database.recognitions.create_recognition(tenant.id, _new(request_id="req-1"))
    with pytest.raises(DuplicateRequestError) as dup:
        database.recognitions.create_recognition(tenant.id, _new(request_id="req-1", transcript="again"))
    assert dup.value.existing == first
    assert database.recognitions.find_by_request_id(tenant.id, "req-1") == first
    assert database.recognitions.find_by_request_id(tenant.id, "req-2") is None

    elsewhere = database.recognitions.create_recognition(other_tenant.id, _new(request_id="req-1"))
    assert elsewhere.id != first.id
    assert database.recognitions.find_by_request_id(other_tenant.id, "req-1") == elsewhere

    database.recognitions.delete_recognition(tenant.id, first.id)
    assert database.recognitions.find_by_request_id(tenant.id, "req-1") is None
    reused = database.recognitions.create_recognition(tenant.id, _new(request_id="req-1"))
    assert reused.id != first.id
    # No request_id: any number of rows.
    a = database.recognitions.create_recognition(tenant.id, _new(request_id=None))
    b = database.recognitions.create_recognition(tenant.id, _new(request_id=""))
    assert a.request_id is None and b.request_id is None


def test_concurrent_duplicate_requests_create_one_row(database: Database, tenant: TenantRecord) -> None:
    barrier = threading.Barrier(4)
    created: list[int] = []
    duplicates: list[int] = []

    def attempt() -> None:
        barrier.wait()
        try:
            created.append(database.recognitions.create_recognition(tenant.id, _new(request_id="race")).id)
        except DuplicateRequestError as err:
            duplicates.append(err.existing.id)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(created) == 1 and duplicates == created * 3


def test_paging_is_complete_ordered_and_stable_on_ties(database: Database, tenant: TenantRecord) -> None:
    ids = [
        database.recognitions.create_recognition(tenant.id, _new(labels={"n": str(i)})).id for i in range(11)
    ]
    tie = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    with database.sessions.write() as session:  # force equal create_times: the id must break ties
        session.execute(update(Recognition).where(Recognition.id.in_(ids[3:8])).values(create_time=tie))
    everything = _all_pages(database, tenant.id, RecognitionFilter(), size=3)
    assert len(everything) == 11 and len({r.id for r in everything}) == 11
    keys = [(r.create_time, r.id) for r in everything]
    assert keys == sorted(keys, reverse=True)
    assert [r.id for r in everything[:5]] == sorted(ids[3:8], reverse=True)
    assert everything[0].create_time == tie
    one_page = database.recognitions.list_recognitions(tenant.id, page_size=100)
    assert [r.id for r in one_page.items] == [r.id for r in everything] and one_page.next_page_token == ""


def test_filters_combine_over_several_pages(database: Database, tenant: TenantRecord) -> None:
    before = datetime.now(UTC)
    for i in range(12):
        database.recognitions.create_recognition(
            tenant.id,
            _new(
                state="FAILED" if i % 3 == 0 else "SUCCEEDED",
                labels={"call_id": f"c-{i}", "team": "red" if i % 2 else "blue"},
                transcript=f"第{i}通电话 Order №{i} 折扣 50%_off ÉCOLE" if i % 4 == 1 else f"普通通话 {i}",
            ),
        )
    middle = datetime.now(UTC)
    for _ in range(3):
        database.recognitions.create_recognition(tenant.id, _new(labels={"team": "red"}))
    rec = database.recognitions

    def ids_of(query: RecognitionFilter) -> int:
        return len(_all_pages(database, tenant.id, query, size=2))

    assert ids_of(RecognitionFilter()) == 15
    assert ids_of(RecognitionFilter(create_time_from=before, create_time_to=middle)) == 12
    assert ids_of(RecognitionFilter(create_time_from=middle)) == 3
    assert ids_of(RecognitionFilter(states=["FAILED"])) == 4
    assert ids_of(RecognitionFilter(states=["FAILED", "SUCCEEDED"])) == 15
    assert ids_of(RecognitionFilter(labels={"team": "red"})) == 6 + 3
    assert ids_of(RecognitionFilter(labels={"team": "red", "call_id": "c-5"})) == 1
    assert ids_of(RecognitionFilter(labels={"team": "RED"})) == 0  # label values match exactly
    assert ids_of(RecognitionFilter(labels={"team": "red"}, states=["FAILED"], create_time_to=middle)) == 2
    # Text: case-insensitive substring, Chinese, and LIKE wildcards taken literally.
    assert ids_of(RecognitionFilter(text_contains="通电话")) == 3
    assert ids_of(RecognitionFilter(text_contains="50%_")) == 3
    assert ids_of(RecognitionFilter(text_contains="%")) == 3
    assert ids_of(RecognitionFilter(text_contains="_")) == 3
    assert ids_of(RecognitionFilter(text_contains="0%_OFF")) == 3
    assert ids_of(RecognitionFilter(text_contains="école")) == 3
    assert ids_of(RecognitionFilter(text_contains="№5")) == 1
    assert ids_of(RecognitionFilter(text_contains="5_off")) == 0
    assert ids_of(RecognitionFilter(text_contains="通电话", states=["FAILED"])) == 1  # i == 9

    page = rec.list_recognitions(tenant.id, RecognitionFilter(labels={"team": "red"}), page_size=2)
    with pytest.raises(InvalidPageTokenError):
        rec.list_recognitions(tenant.id, RecognitionFilter(labels={"team": "blue"}), 2, page.next_page_token)
    with pytest.raises(InvalidPageTokenError):
        rec.list_recognitions(tenant.id, RecognitionFilter(), 2, page.next_page_token[:-3])
    with pytest.raises(InvalidValueError):
        rec.list_recognitions(tenant.id, RecognitionFilter(create_time_from=datetime(2030, 1, 1)))


def test_delete_is_logical_and_hides_everywhere(database: Database, tenant: TenantRecord) -> None:
    keep = database.recognitions.create_recognition(tenant.id, _new(labels={"k": "v"}))
    gone = database.recognitions.create_recognition(tenant.id, _new(labels={"k": "v"}))
    database.recognitions.delete_recognition(tenant.id, gone.id)
    with pytest.raises(NotFoundError):
        database.recognitions.get_recognition(tenant.id, gone.id)
    with pytest.raises(NotFoundError):
        database.recognitions.delete_recognition(tenant.id, gone.id)
    listed = database.recognitions.list_recognitions(tenant.id, RecognitionFilter(labels={"k": "v"}))
    assert [r.id for r in listed.items] == [keep.id]
    with database.sessions.read() as session:
        row = session.get(Recognition, gone.id)
        assert row is not None and row.deleted == 1 and row.deleted_token == gone.id


def test_recognitions_are_tenant_scoped(
    database: Database, tenant: TenantRecord, other_tenant: TenantRecord
) -> None:
    mine = database.recognitions.create_recognition(
        tenant.id, _new(request_id="mine", labels={"call_id": "x"})
    )
    database.recognitions.create_recognition(tenant.id, _new())
    other = other_tenant.id
    for call in (database.recognitions.get_recognition, database.recognitions.delete_recognition):
        with pytest.raises(NotFoundError) as foreign:
            call(other, mine.id)
        with pytest.raises(NotFoundError) as missing:
            call(other, mine.id + 7)
        assert foreign.value.kind == missing.value.kind
    assert database.recognitions.find_by_request_id(other, "mine") is None
    assert database.recognitions.list_recognitions(other).items == ()
    assert (
        database.recognitions.list_recognitions(other, RecognitionFilter(labels={"call_id": "x"})).items == ()
    )
    page = database.recognitions.list_recognitions(tenant.id, page_size=1)
    assert page.next_page_token
    with pytest.raises(InvalidPageTokenError):
        database.recognitions.list_recognitions(other, page_size=1, page_token=page.next_page_token)
    assert database.recognitions.get_recognition(tenant.id, mine.id) == mine
    with pytest.raises(NotFoundError) as unknown:
        database.recognitions.create_recognition(mine.id, _new())  # no tenant has this id
    assert unknown.value.kind == "tenant"


def test_label_and_field_limits(database: Database, tenant: TenantRecord) -> None:
    rec = database.recognitions
    at_limit = {f"k{i:02d}".ljust(limits.LABEL_KEY_MAX, "k"): "v" * limits.LABEL_VALUE_MAX for i in range(64)}
    stored = rec.create_recognition(tenant.id, _new(labels=at_limit))
    assert rec.get_recognition(tenant.id, stored.id).labels == at_limit
    key = next(iter(at_limit))
    found = rec.list_recognitions(tenant.id, RecognitionFilter(labels={key: at_limit[key]}))
    assert [r.id for r in found.items] == [stored.id]

    refused: list[dict[str, object]] = [
        {"labels": {"call_id": "x" * (1 << 20)}},  # 1 MB label value
        {"labels": {"k" * (limits.LABEL_KEY_MAX + 1): "v"}},
        {"labels": {"": "v"}},
        {"labels": {f"k{i}": "v" for i in range(limits.LABELS_MAX + 1)}},
        {"labels": {"k": "nul\x00"}},
        {"request_id": "r" * (limits.REQUEST_ID_MAX + 1)},
        {"state": ""},
        {"model": "m" * (limits.MODEL_MAX + 1)},
        {"segments": [{"text": "nul\x00"}]},
        {"config": {"x": float("inf")}},
    ]
    for overrides in refused:
        with pytest.raises(InvalidValueError):
            rec.create_recognition(tenant.id, _new(**overrides))
    assert len(rec.list_recognitions(tenant.id).items) == 1
