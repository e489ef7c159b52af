"""Hotword sets on every database: names, etags (optimistic locking), defaults, resolution, isolation."""

from __future__ import annotations

import threading

import pytest

from service.db import (
    AlreadyExistsError,
    Database,
    HotwordRecord,
    InvalidPageTokenError,
    InvalidValueError,
    NotFoundError,
    StaleEtagError,
    TenantRecord,
)


def test_create_and_get_by_id_and_name(database: Database, tenant: TenantRecord) -> None:
    created = database.hotwords.create_hotword_set(
        tenant.id,
        "products",
        display_name="产品名",
        language="zh",
        phrases=[("灵听", 2.5), "Paraformer", HotwordRecord(phrase="达摩院", boost=None), "灵听"],
    )
    assert created.phrases == (
        HotwordRecord(phrase="灵听", boost=2.5),
        HotwordRecord(phrase="Paraformer"),
        HotwordRecord(phrase="达摩院"),
    )
    assert created.version == 1 and not created.tenant_default
    assert database.hotwords.get_hotword_set(tenant.id, created.id) == created
    assert database.hotwords.get_hotword_set(tenant.id, "products") == created


def test_names_are_unique_per_tenant_and_reusable_after_delete(
    database: Database, tenant: TenantRecord, other_tenant: TenantRecord
) -> None:
    first = database.hotwords.create_hotword_set(tenant.id, "names", phrases=["a"])
    with pytest.raises(AlreadyExistsError):
        database.hotwords.create_hotword_set(tenant.id, "names")
    database.hotwords.create_hotword_set(other_tenant.id, "names")  # another tenant: no conflict
    database.hotwords.delete_hotword_set(tenant.id, first.id)
    with pytest.raises(NotFoundError):
        database.hotwords.get_hotword_set(tenant.id, first.id)
    second = database.hotwords.create_hotword_set(tenant.id, "names", phrases=["b"])
    assert second.id != first.id and second.etag != first.etag
    database.hotwords.delete_hotword_set(tenant.id, second.id, second.etag)
    third = database.hotwords.create_hotword_set(tenant.id, "names")  # twice deleted, still reusable
    assert database.hotwords.get_hotword_set(tenant.id, "names") == third


def test_update_with_etag_and_stale_etag(database: Database, tenant: TenantRecord) -> None:
    created = database.hotwords.create_hotword_set(tenant.id, "etag", phrases=["old"])
    updated = database.hotwords.update_hotword_set(
        tenant.id,
        created.id,
        {"display_name": "New", "tenant_default": True, "phrases": [("new", 1.5)]},
        expected_etag=created.etag,
    )
    assert updated.version == created.version + 1 and updated.etag != created.etag
    assert updated.display_name == "New" and updated.tenant_default
    assert updated.phrases == (HotwordRecord(phrase="new", boost=1.5),)
    assert updated.update_time >= created.update_time and updated.create_time == created.create_time
    assert database.hotwords.get_hotword_set(tenant.id, created.id) == updated

    with pytest.raises(StaleEtagError):
        database.hotwords.update_hotword_set(tenant.id, created.id, {"language": "en"}, created.etag)
    with pytest.raises(StaleEtagError):
        database.hotwords.delete_hotword_set(tenant.id, created.id, created.etag)
    assert database.hotwords.get_hotword_set(tenant.id, created.id) == updated  # nothing changed

    without_etag = database.hotwords.update_hotword_set(tenant.id, created.id, {"language": "en"})
    assert without_etag.language == "en" and without_etag.phrases == updated.phrases


def test_update_refuses_unknown_and_immutable_fields(database: Database, tenant: TenantRecord) -> None:
    created = database.hotwords.create_hotword_set(tenant.id, "fields")
    for changes in ({"name": "renamed"}, {"tenant_id": 1}, {"version": 7}):
        with pytest.raises(InvalidValueError) as err:
            database.hotwords.update_hotword_set(tenant.id, created.id, changes)
        assert err.value.field == next(iter(changes))
    with pytest.raises(InvalidValueError):
        database.hotwords.update_hotword_set(tenant.id, created.id, {"phrases": [("x" * 256, None)]})
    with pytest.raises(InvalidValueError):
        database.hotwords.update_hotword_set(tenant.id, created.id, {"phrases": [("x", float("nan"))]})
    assert database.hotwords.get_hotword_set(tenant.id, created.id) == created


def test_concurrent_updates_with_the_same_etag_let_exactly_one_win(
    database: Database, tenant: TenantRecord
) -> None:
    created = database.hotwords.create_hotword_set(tenant.id, "race")
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            database.hotwords.update_hotword_set(
                tenant.id, created.id, {"display_name": f"writer {i}", "phrases": [f"p{i}"]}, created.etag
            )
            outcomes.append("won")
        except StaleEtagError:
            outcomes.append("stale")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["stale", "stale", "stale", "won"]
    final = database.hotwords.get_hotword_set(tenant.id, created.id)
    assert final.version == 2
    assert final.phrases == (HotwordRecord(phrase="p" + final.display_name.split()[-1]),)


def test_defaults_resolution_and_listing(database: Database, tenant: TenantRecord) -> None:
    a = database.hotwords.create_hotword_set(tenant.id, "a-set", tenant_default=True, phrases=["甲"])
    b = database.hotwords.create_hotword_set(tenant.id, "b-set", phrases=["乙"])
    c = database.hotwords.create_hotword_set(tenant.id, "c-set", tenant_default=True)
    assert [s.name for s in database.hotwords.default_hotword_sets(tenant.id)] == ["a-set", "c-set"]

    resolved = database.hotwords.resolve_hotword_sets(tenant.id, ["b-set", a.id, "a-set", c.id])
    assert [s.id for s in resolved] == [b.id, a.id, c.id]
    with pytest.raises(NotFoundError) as err:
        database.hotwords.resolve_hotword_sets(tenant.id, ["b-set", "nope", 12345])
    assert err.value.keys == ("nope", 12345)

    first = database.hotwords.list_hotword_sets(tenant.id, page_size=2)
    assert [s.name for s in first.items] == ["a-set", "b-set"] and first.items[0].phrases
    second = database.hotwords.list_hotword_sets(tenant.id, page_size=2, page_token=first.next_page_token)
    assert [s.name for s in second.items] == ["c-set"] and second.next_page_token == ""
    defaults = database.hotwords.list_hotword_sets(tenant.id, tenant_default=True)
    assert [s.name for s in defaults.items] == ["a-set", "c-set"]
    with pytest.raises(InvalidPageTokenError):
        database.hotwords.list_hotword_sets(
            tenant.id, page_size=2, page_token=first.next_page_token, tenant_default=False
        )


def test_hotword_sets_are_tenant_scoped(
    database: Database, tenant: TenantRecord, other_tenant: TenantRecord
) -> None:
    mine = database.hotwords.create_hotword_set(tenant.id, "private", tenant_default=True, phrases=["秘密"])
    other = other_tenant.id
    for ref in (mine.id, "private"):
        with pytest.raises(NotFoundError):
            database.hotwords.get_hotword_set(other, ref)
    with pytest.raises(NotFoundError):
        database.hotwords.resolve_hotword_sets(other, [mine.id])
    with pytest.raises(NotFoundError):
        database.hotwords.update_hotword_set(other, mine.id, {"display_name": "stolen"}, mine.etag)
    with pytest.raises(NotFoundError):
        database.hotwords.delete_hotword_set(other, mine.id)
    assert database.hotwords.default_hotword_sets(other) == ()
    assert database.hotwords.list_hotword_sets(other).items == ()
    page = database.hotwords.list_hotword_sets(tenant.id, page_size=1)
    with pytest.raises(InvalidPageTokenError):
        database.hotwords.list_hotword_sets(other, page_size=1, page_token=page.next_page_token or "x")
    assert database.hotwords.get_hotword_set(tenant.id, mine.id) == mine
    with pytest.raises(NotFoundError):
        database.hotwords.create_hotword_set(mine.id, "no such tenant")
