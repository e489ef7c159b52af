"""Recognition history through the API on SQLite, PostgreSQL and MariaDB: paging and filters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import pytest_asyncio
from google.protobuf import timestamp_pb2

from asr_engine.engine import Engine
from lingting.asr.v1 import recognition_pb2
from lingting.asr.v1 import recognition_service_pb2 as pb
from tests.dbutil import BACKEND_PARAMS, migrated_database
from tests.service.conftest import Client, Running, audio, start_server

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=BACKEND_PARAMS)
async def backend_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, engine: Engine
) -> AsyncIterator[Running]:
    with migrated_database(request.param, tmp_path_factory.mktemp("hist")) as url:
        async with start_server(url, engine) as run:
            yield run


def _ts(moment: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(moment)
    return ts


async def _list_all(client: Client, **query: object) -> list[recognition_pb2.Recognition]:
    out: list[recognition_pb2.Recognition] = []
    token = ""
    for _ in range(50):
        page = await client.recognition.ListRecognitions(
            pb.ListRecognitionsRequest(page_size=3, page_token=token, **query),  # type: ignore[arg-type]
            metadata=client.md,
        )
        assert len(page.recognitions) <= 3
        out += page.recognitions
        token = page.next_page_token
        if not token:
            return out
    raise AssertionError("paging did not end")


async def test_paging_and_filters(backend_server: Running) -> None:
    client = await backend_server.new_tenant("history")
    other = await backend_server.new_tenant("neighbour")
    before = datetime.now(UTC) - timedelta(seconds=1)
    ids: list[int] = []
    for index in range(8):
        name = "zh_16k.wav" if index % 4 == 0 else "en_16k.wav"
        response = await client.recognition.Recognize(
            pb.RecognizeRequest(
                config=recognition_pb2.RecognitionConfig(),
                content=audio(name),
                labels={"call_id": f"c-{index}", "batch": "odd" if index % 2 else "even"},
            ),
            metadata=client.md,
        )
        ids.append(response.recognition_id)
    await other.recognition.Recognize(
        pb.RecognizeRequest(
            config=recognition_pb2.RecognitionConfig(), content=audio("en_16k.wav"), labels={"batch": "odd"}
        ),
        metadata=other.md,
    )
    with pytest.raises(grpc.aio.AioRpcError):  # a failed recognition is recorded too
        await client.recognition.Recognize(
            pb.RecognizeRequest(
                config=recognition_pb2.RecognitionConfig(),
                content=b"not audio at all",
                labels={"batch": "broken"},
            ),
            metadata=client.md,
        )

    everything = await _list_all(client)
    assert len(everything) == 9  # three full pages
    succeeded = [r for r in everything if r.state == recognition_pb2.Recognition.STATE_SUCCEEDED]
    assert [r.id for r in succeeded] == ids[::-1]  # newest first
    (failed,) = [r for r in everything if r.state == recognition_pb2.Recognition.STATE_FAILED]
    assert failed.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and failed.error.message
    assert failed.labels == {"batch": "broken"}

    odd = await _list_all(client, labels={"batch": "odd"})
    assert [r.id for r in odd] == [ids[i] for i in (7, 5, 3, 1)]
    one = await _list_all(client, labels={"batch": "odd", "call_id": "c-3"})
    assert [r.id for r in one] == [ids[3]]
    states = await _list_all(client, states=[recognition_pb2.Recognition.STATE_FAILED])
    assert [r.id for r in states] == [failed.id]

    zh_text = succeeded[-1].transcript  # ids[0] is a Mandarin file
    word = zh_text[1:3]
    by_text = await _list_all(client, transcript_contains=word)
    assert ids[0] in {r.id for r in by_text}
    assert all(word.lower() in r.transcript.lower() for r in by_text)

    later = await _list_all(client, create_time_start=_ts(datetime.now(UTC) + timedelta(minutes=1)))
    assert later == []
    window = await _list_all(
        client, create_time_start=_ts(before), create_time_end=_ts(datetime.now(UTC) + timedelta(minutes=1))
    )
    assert len(window) == 9

    page = await client.recognition.ListRecognitions(
        pb.ListRecognitionsRequest(page_size=3), metadata=client.md
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:  # a token is bound to its filter
        await client.recognition.ListRecognitions(
            pb.ListRecognitionsRequest(page_size=3, page_token=page.next_page_token, labels={"batch": "odd"}),
            metadata=client.md,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    await client.recognition.DeleteRecognition(
        pb.DeleteRecognitionRequest(name=f"recognitions/{ids[0]}"), metadata=client.md
    )
    assert ids[0] not in {r.id for r in await _list_all(client)}
