"""Tenant isolation for every RPC, and the credential rules (revoked keys, admin-only TenantService)."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from lingting.asr.v1 import hotword_pb2, recognition_pb2
from lingting.asr.v1 import hotword_set_service_pb2 as hpb
from lingting.asr.v1 import recognition_service_pb2 as rpb
from lingting.asr.v1 import tenant_service_pb2 as tpb
from tests.service.conftest import Client, Running, audio, bearer
from tests.service.helpers import error_info

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _code(coro: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await coro  # type: ignore[misc]
    return err.value.code()


async def test_tenant_b_cannot_touch_tenant_a_data(tenant_a: Client, tenant_b: Client) -> None:
    rec = await tenant_a.recognition.Recognize(
        rpb.RecognizeRequest(
            config=recognition_pb2.RecognitionConfig(),
            content=audio("en_16k.wav"),
            labels={"owner": "a"},
            request_id="shared-id",
        ),
        metadata=tenant_a.md,
    )
    hs = (
        await tenant_a.hotwords.CreateHotwordSet(
            hpb.CreateHotwordSetRequest(
                hotword_set=hotword_pb2.HotwordSet(phrases=[hotword_pb2.Hotword(phrase="秘密")]),
                hotword_set_id="secret",
            ),
            metadata=tenant_a.md,
        )
    ).hotword_set
    md = tenant_b.md
    nf = grpc.StatusCode.NOT_FOUND
    assert (
        await _code(
            tenant_b.recognition.GetRecognition(rpb.GetRecognitionRequest(name=rec.recognition), metadata=md)
        )
        == nf
    )
    assert (
        await _code(
            tenant_b.recognition.DeleteRecognition(
                rpb.DeleteRecognitionRequest(name=rec.recognition), metadata=md
            )
        )
        == nf
    )
    listed = await tenant_b.recognition.ListRecognitions(
        rpb.ListRecognitionsRequest(page_size=1000), metadata=md
    )
    assert rec.recognition_id not in {r.id for r in listed.recognitions}
    by_label = await tenant_b.recognition.ListRecognitions(
        rpb.ListRecognitionsRequest(labels={"owner": "a"}), metadata=md
    )
    assert not by_label.recognitions
    for name in (hs.name, f"hotwordSets/{hs.id}"):
        assert (
            await _code(tenant_b.hotwords.GetHotwordSet(hpb.GetHotwordSetRequest(name=name), metadata=md))
            == nf
        )
        assert (
            await _code(
                tenant_b.hotwords.DeleteHotwordSet(hpb.DeleteHotwordSetRequest(name=name), metadata=md)
            )
            == nf
        )
        assert (
            await _code(
                tenant_b.hotwords.UpdateHotwordSet(
                    hpb.UpdateHotwordSetRequest(
                        hotword_set=hotword_pb2.HotwordSet(name=name, display_name="x"),
                        update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
                    ),
                    metadata=md,
                )
            )
            == nf
        )
    sets = await tenant_b.hotwords.ListHotwordSets(hpb.ListHotwordSetsRequest(), metadata=md)
    assert hs.name not in {s.name for s in sets.hotword_sets}
    use = rpb.RecognizeRequest(
        config=recognition_pb2.RecognitionConfig(
            hotword_config=recognition_pb2.HotwordConfig(hotword_sets=[str(hs.id)])
        ),
        content=audio("en_16k.wav"),
    )
    assert await _code(tenant_b.recognition.Recognize(use, metadata=md)) == nf
    # The same request_id in another tenant is a new recognition, not A's replay.
    own = await tenant_b.recognition.Recognize(
        rpb.RecognizeRequest(
            config=recognition_pb2.RecognitionConfig(), content=audio("en_16k.wav"), request_id="shared-id"
        ),
        metadata=md,
    )
    assert own.recognition_id != rec.recognition_id
    # A page token of A's listing is refused for B.
    page = await tenant_a.recognition.ListRecognitions(
        rpb.ListRecognitionsRequest(page_size=1), metadata=tenant_a.md
    )
    if page.next_page_token:
        code = await _code(
            tenant_b.recognition.ListRecognitions(
                rpb.ListRecognitionsRequest(page_size=1, page_token=page.next_page_token), metadata=md
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    # A's data is still there for A.
    await tenant_a.recognition.GetRecognition(
        rpb.GetRecognitionRequest(name=rec.recognition), metadata=tenant_a.md
    )
    await tenant_a.hotwords.GetHotwordSet(hpb.GetHotwordSetRequest(name=hs.name), metadata=tenant_a.md)


async def test_credentials(running: Running, tenant_a: Client) -> None:
    models = rpb.ListModelsRequest()
    rec = tenant_a.recognition
    assert await _code(rec.ListModels(models)) == grpc.StatusCode.UNAUTHENTICATED
    assert (
        await _code(rec.ListModels(models, metadata=(("authorization", "Basic abc"),)))
        == grpc.StatusCode.UNAUTHENTICATED
    )
    assert (
        await _code(rec.ListModels(models, metadata=bearer("lt_not-a-key")))
        == grpc.StatusCode.UNAUTHENTICATED
    )
    # The admin token is not a tenant credential.
    assert await _code(rec.ListModels(models, metadata=running.admin.md)) == grpc.StatusCode.PERMISSION_DENIED
    # A tenant key on TenantService.
    code = await _code(tenant_a.tenants.ListTenants(tpb.ListTenantsRequest(), metadata=tenant_a.md))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code = await _code(tenant_a.tenants.CreateTenant(tpb.CreateTenantRequest(), metadata=tenant_a.md))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert (
        await _code(tenant_a.tenants.ListTenants(tpb.ListTenantsRequest())) == grpc.StatusCode.UNAUTHENTICATED
    )


async def test_tenant_service_and_revocation(running: Running) -> None:
    admin = running.admin
    client = await running.new_tenant("to revoke")
    await client.recognition.ListModels(rpb.ListModelsRequest(), metadata=client.md)  # works (and is cached)
    tenants = await admin.tenants.ListTenants(tpb.ListTenantsRequest(page_size=1000), metadata=admin.md)
    assert client.tenant_name in {t.name for t in tenants.tenants}
    keys = await admin.tenants.ListApiKeys(
        tpb.ListApiKeysRequest(parent=client.tenant_name), metadata=admin.md
    )
    (key,) = keys.api_keys
    assert client.secret.startswith(key.key_prefix) and not key.revoked
    revoked = await admin.tenants.RevokeApiKey(tpb.RevokeApiKeyRequest(name=key.name), metadata=admin.md)
    assert revoked.api_key.revoked and revoked.api_key.HasField("revoke_time")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.recognition.ListModels(rpb.ListModelsRequest(), metadata=client.md)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    info = error_info(err.value)
    assert info is not None and info.reason == "CREDENTIALS_INVALID"
    code = await _code(
        admin.tenants.ListApiKeys(tpb.ListApiKeysRequest(parent="tenants/1"), metadata=admin.md)
    )
    assert code == grpc.StatusCode.NOT_FOUND
    code = await _code(
        admin.tenants.ListApiKeys(tpb.ListApiKeysRequest(parent="nonsense"), metadata=admin.md)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    # Another tenant's key id under the wrong parent is not found.
    other = await running.new_tenant("other")
    other_keys = await admin.tenants.ListApiKeys(
        tpb.ListApiKeysRequest(parent=other.tenant_name), metadata=admin.md
    )
    wrong = f"{client.tenant_name}/apiKeys/{other_keys.api_keys[0].id}"
    assert (
        await _code(admin.tenants.RevokeApiKey(tpb.RevokeApiKeyRequest(name=wrong), metadata=admin.md))
        == grpc.StatusCode.NOT_FOUND
    )
    await other.recognition.ListModels(rpb.ListModelsRequest(), metadata=other.md)  # still valid
