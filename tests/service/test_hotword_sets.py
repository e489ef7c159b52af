"""HotwordSetService: create, read, list, update with etags, delete; defaults applied to recognitions."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from lingting.asr.v1 import hotword_pb2, recognition_pb2
from lingting.asr.v1 import hotword_set_service_pb2 as pb
from lingting.asr.v1 import recognition_service_pb2 as rpb
from tests.service.conftest import Client, audio
from tests.service.helpers import error_info

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _set(**kwargs: object) -> hotword_pb2.HotwordSet:
    return hotword_pb2.HotwordSet(**kwargs)  # type: ignore[arg-type]


async def _create(
    client: Client, set_id: str, phrases: list[tuple[str, float | None]], **kwargs: object
) -> hotword_pb2.HotwordSet:
    hotwords = [
        hotword_pb2.Hotword(phrase=p, boost=b) if b is not None else hotword_pb2.Hotword(phrase=p)
        for p, b in phrases
    ]
    response = await client.hotwords.CreateHotwordSet(
        pb.CreateHotwordSetRequest(hotword_set=_set(phrases=hotwords, **kwargs), hotword_set_id=set_id),
        metadata=client.md,
    )
    return response.hotword_set


async def test_crud_with_etags(tenant_a: Client) -> None:
    created = await _create(
        tenant_a, "products", [("灵听", 2.5), ("Lingting", None)], display_name="Products", language_code="zh"
    )
    assert created.name == "hotwordSets/products" and created.id > 0 and created.etag
    assert [(p.phrase, p.HasField("boost")) for p in created.phrases] == [("灵听", True), ("Lingting", False)]
    assert created.phrases[0].boost == pytest.approx(2.5)

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _create(tenant_a, "products", [("x", None)])
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS

    by_id = await tenant_a.hotwords.GetHotwordSet(
        pb.GetHotwordSetRequest(name=f"hotwordSets/{created.id}"), metadata=tenant_a.md
    )
    assert by_id.hotword_set == created

    updated = (
        await tenant_a.hotwords.UpdateHotwordSet(
            pb.UpdateHotwordSetRequest(
                hotword_set=_set(
                    name=created.name,
                    etag=created.etag,
                    display_name="Our products",
                    phrases=[hotword_pb2.Hotword(phrase="新词")],
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name", "phrases"]),
            ),
            metadata=tenant_a.md,
        )
    ).hotword_set
    assert updated.display_name == "Our products" and [p.phrase for p in updated.phrases] == ["新词"]
    assert updated.language_code == "zh" and updated.etag != created.etag

    with pytest.raises(grpc.aio.AioRpcError) as err:  # the etag read before the update is stale now
        await tenant_a.hotwords.UpdateHotwordSet(
            pb.UpdateHotwordSetRequest(
                hotword_set=_set(name=created.name, etag=created.etag, display_name="lost"),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
            ),
            metadata=tenant_a.md,
        )
    assert err.value.code() == grpc.StatusCode.ABORTED
    info = error_info(err.value)
    assert info is not None and info.reason == "ETAG_MISMATCH" and info.domain == "lingting.asr.v1"

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await tenant_a.hotwords.UpdateHotwordSet(
            pb.UpdateHotwordSetRequest(
                hotword_set=_set(name=created.name), update_mask=field_mask_pb2.FieldMask(paths=["name"])
            ),
            metadata=tenant_a.md,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await tenant_a.hotwords.DeleteHotwordSet(
            pb.DeleteHotwordSetRequest(name=created.name, etag=created.etag), metadata=tenant_a.md
        )
    assert err.value.code() == grpc.StatusCode.ABORTED
    await tenant_a.hotwords.DeleteHotwordSet(
        pb.DeleteHotwordSetRequest(name=created.name, etag=updated.etag), metadata=tenant_a.md
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await tenant_a.hotwords.GetHotwordSet(
            pb.GetHotwordSetRequest(name=created.name), metadata=tenant_a.md
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    again = await _create(tenant_a, "products", [("back", None)])  # a deleted set's id is free again
    assert again.id != created.id


async def test_list_pages_and_filter(tenant_a: Client) -> None:
    for index in range(5):
        await _create(tenant_a, f"set-{index}", [(f"word{index}", None)], tenant_default=index % 2 == 0)
    names: list[str] = []
    token = ""
    while True:
        page = await tenant_a.hotwords.ListHotwordSets(
            pb.ListHotwordSetsRequest(page_size=2, page_token=token), metadata=tenant_a.md
        )
        assert len(page.hotword_sets) <= 2
        names += [s.name for s in page.hotword_sets]
        token = page.next_page_token
        if not token:
            break
    assert names == sorted(names) and {f"hotwordSets/set-{i}" for i in range(5)} <= set(names)
    defaults = await tenant_a.hotwords.ListHotwordSets(
        pb.ListHotwordSetsRequest(tenant_default=True), metadata=tenant_a.md
    )
    assert {s.name for s in defaults.hotword_sets} == {
        "hotwordSets/set-0",
        "hotwordSets/set-2",
        "hotwordSets/set-4",
    }


async def test_bad_set_ids_are_invalid(tenant_a: Client) -> None:
    for bad in ("", "Upper", "1starts-with-digit", "x" * 64, "ends-"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _create(tenant_a, bad, [("x", None)])
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_defaults_apply_automatically_and_are_reported(tenant_b: Client) -> None:
    default = await _create(tenant_b, "always", [("默认词", 3.0)], tenant_default=True)
    named = await _create(tenant_b, "named", [("命名词", None)])

    def request(**hotword_config: object) -> rpb.RecognizeRequest:
        return rpb.RecognizeRequest(
            config=recognition_pb2.RecognitionConfig(
                hotword_config=recognition_pb2.HotwordConfig(**hotword_config)
            ),  # type: ignore[arg-type]
            content=audio("zh_16k.wav"),
        )

    plain = await tenant_b.recognition.Recognize(request(), metadata=tenant_b.md)
    assert list(plain.metadata.applied_hotword_sets) == [default.name]
    # This model ignores hotwords and says so; a hotword-capable model lists them in applied_hotwords.
    assert any("hotword" in w for w in plain.metadata.warnings)
    stored = await tenant_b.recognition.GetRecognition(
        rpb.GetRecognitionRequest(name=plain.recognition), metadata=tenant_b.md
    )
    assert list(stored.recognition.metadata.applied_hotword_sets) == [default.name]

    both = await tenant_b.recognition.Recognize(
        request(
            hotword_sets=["named", str(named.id), "hotwordSets/named"],
            hotwords=[hotword_pb2.Hotword(phrase="内联")],
        ),
        metadata=tenant_b.md,
    )
    assert list(both.metadata.applied_hotword_sets) == [default.name, named.name]

    opted_out = await tenant_b.recognition.Recognize(
        request(use_tenant_defaults=False, hotword_sets=["named"]), metadata=tenant_b.md
    )
    assert list(opted_out.metadata.applied_hotword_sets) == [named.name]

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await tenant_b.recognition.Recognize(request(hotword_sets=["missing"]), metadata=tenant_b.md)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
