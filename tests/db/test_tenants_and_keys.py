"""Tenants and API keys on every database: creation, listing, authentication, isolation."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from service.db import AlreadyExistsError, Database, InvalidPageTokenError, NotFoundError, TenantRecord
from service.db.api_keys import SECRET_PREFIX, ApiKeyRepository
from service.db.ids import IdGenerator
from service.db.models import ApiKey


def test_create_get_and_delete_tenant(database: Database) -> None:
    created = database.tenants.create_tenant("Acme 灵听")
    assert database.tenants.get_tenant(created.id) == created
    assert created.create_time.tzinfo is not None
    database.tenants.delete_tenant(created.id)
    with pytest.raises(NotFoundError):
        database.tenants.get_tenant(created.id)
    with pytest.raises(NotFoundError):
        database.tenants.delete_tenant(created.id)


def test_chosen_tenant_id_is_unique(database: Database) -> None:
    chosen = database.tenants.create_tenant("first").id + 12345
    assert database.tenants.create_tenant("bootstrap", tenant_id=chosen).id == chosen
    with pytest.raises(AlreadyExistsError):
        database.tenants.create_tenant("again", tenant_id=chosen)


def test_list_tenants_pages_through_everything(database: Database) -> None:
    mine = {database.tenants.create_tenant(f"paged {i}").id for i in range(5)}
    seen: list[int] = []
    token = ""
    while True:
        page = database.tenants.list_tenants(page_size=2, page_token=token)
        assert len(page.items) <= 2
        seen += [t.id for t in page.items]
        token = page.next_page_token
        if not token:
            break
    assert mine <= set(seen)
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    with pytest.raises(InvalidPageTokenError):
        database.tenants.list_tenants(page_token="garbage!")


def test_api_key_secret_is_shown_once_and_stored_hashed(database: Database, tenant: TenantRecord) -> None:
    record, secret = database.api_keys.create_api_key(tenant.id, "backend")
    assert secret.startswith(SECRET_PREFIX) and len(secret) >= len(SECRET_PREFIX) + 43
    assert secret.startswith(record.key_prefix) and len(record.key_prefix) < 16
    with database.sessions.read() as session:
        stored = session.scalars(select(ApiKey.key_hash).where(ApiKey.id == record.id)).one()
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(record)
    assert database.api_keys.authenticate(secret) == tenant


def test_authenticate_refuses_unknown_revoked_and_deleted(database: Database) -> None:
    owner = database.tenants.create_tenant("owner")
    record, secret = database.api_keys.create_api_key(owner.id, "k1")
    _, secret2 = database.api_keys.create_api_key(owner.id, "k2")
    assert database.api_keys.authenticate(secret) == owner
    for bad in ("", "lt_", secret + "x", secret[:-1], "Bearer " + secret, SECRET_PREFIX + "x" * 5000):
        assert database.api_keys.authenticate(bad) is None

    revoked = database.api_keys.revoke_api_key(owner.id, record.id)
    assert revoked.revoked
    assert database.api_keys.revoke_api_key(owner.id, record.id).revoke_time == revoked.revoke_time
    assert database.api_keys.authenticate(secret) is None
    assert database.api_keys.authenticate(secret2) == owner

    database.tenants.delete_tenant(owner.id)
    assert database.api_keys.authenticate(secret2) is None


def test_last_used_time_is_written_at_most_once_per_interval(
    database: Database, tenant: TenantRecord
) -> None:
    record, secret = database.api_keys.create_api_key(tenant.id, "k")
    assert record.last_used_time is None
    database.api_keys.authenticate(secret)
    first = database.api_keys.get_api_key(tenant.id, record.id).last_used_time
    assert first is not None
    database.api_keys.authenticate(secret)
    assert database.api_keys.get_api_key(tenant.id, record.id).last_used_time == first

    eager = ApiKeyRepository(database.sessions, _ids(database), touch_interval=timedelta(0))
    assert eager.authenticate(secret) == tenant
    later = database.api_keys.get_api_key(tenant.id, record.id).last_used_time
    assert later is not None and later > first


def test_pepper_changes_the_stored_hash(database: Database, tenant: TenantRecord) -> None:
    peppered = ApiKeyRepository(database.sessions, _ids(database), pepper=b"server secret")
    _, secret = peppered.create_api_key(tenant.id, "peppered")
    assert peppered.authenticate(secret) == tenant
    assert database.api_keys.authenticate(secret) is None  # the unpeppered hash does not match


def test_api_keys_are_tenant_scoped(
    database: Database, tenant: TenantRecord, other_tenant: TenantRecord
) -> None:
    record, _ = database.api_keys.create_api_key(tenant.id, "a's key")
    assert [k.id for k in database.api_keys.list_api_keys(tenant.id).items] == [record.id]
    assert database.api_keys.list_api_keys(other_tenant.id).items == ()
    for call in (database.api_keys.get_api_key, database.api_keys.revoke_api_key):
        with pytest.raises(NotFoundError) as foreign:
            call(other_tenant.id, record.id)
        with pytest.raises(NotFoundError) as missing:
            call(other_tenant.id, record.id + 1)
        assert foreign.value.kind == missing.value.kind == "api_key"
    assert not database.api_keys.get_api_key(tenant.id, record.id).revoked
    with pytest.raises(NotFoundError):
        database.api_keys.create_api_key(record.id, "no such tenant")


def test_api_key_listing_pages(database: Database, tenant: TenantRecord) -> None:
    ids = [database.api_keys.create_api_key(tenant.id, f"k{i}")[0].id for i in range(5)]
    first = database.api_keys.list_api_keys(tenant.id, page_size=3)
    second = database.api_keys.list_api_keys(tenant.id, page_size=3, page_token=first.next_page_token)
    assert [k.id for k in first.items + second.items] == ids
    assert second.next_page_token == ""


def _ids(database: Database) -> IdGenerator:
    """A second generator in this process must not share the first one's worker id."""
    return IdGenerator((database.ids.worker_id + 1) % 1024)
