"""RecognitionService happy paths: unary, streaming (live PCM in odd chunks, uploads), history, models."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import grpc
import pytest

from lingting.asr.v1 import model_pb2, recognition_pb2
from lingting.asr.v1 import recognition_service_pb2 as pb
from tests.service.conftest import Client, audio
from tests.service.helpers import pcm_of_wav

pytestmark = pytest.mark.asyncio(loop_scope="session")

Encoding = recognition_pb2.Encoding


def _config(**kwargs: object) -> recognition_pb2.RecognitionConfig:
    return recognition_pb2.RecognitionConfig(**kwargs)  # type: ignore[arg-type]


async def test_recognize_wav_is_stored_and_readable(tenant_a: Client) -> None:
    request = pb.RecognizeRequest(
        config=_config(enable_word_time_offsets=True), content=audio("en_16k.wav"), labels={"call_id": "c-1"}
    )
    call = tenant_a.recognition.Recognize(request, metadata=(*tenant_a.md, ("x-request-id", "rid-42")))
    response = await call
    assert response.transcript and response.results
    assert response.metadata.audio_duration_ms == 3776 and response.metadata.model == "model"
    assert response.metadata.request_id == "rid-42"
    assert ("x-request-id", "rid-42") in tuple(await call.trailing_metadata())
    segment = response.results[0]
    assert segment.end_offset_ms > segment.start_offset_ms >= 0
    assert segment.words and all(w.end_offset_ms >= w.start_offset_ms for w in segment.words)
    assert response.recognition == f"recognitions/{response.recognition_id}"

    got = await tenant_a.recognition.GetRecognition(
        pb.GetRecognitionRequest(name=response.recognition), metadata=tenant_a.md
    )
    rec = got.recognition
    assert rec.state == recognition_pb2.Recognition.STATE_SUCCEEDED
    assert rec.transcript == response.transcript and rec.labels == {"call_id": "c-1"}
    assert list(rec.results) == list(response.results)
    assert rec.config.enable_word_time_offsets and rec.create_time.seconds > 0

    await tenant_a.recognition.DeleteRecognition(
        pb.DeleteRecognitionRequest(name=response.recognition), metadata=tenant_a.md
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await tenant_a.recognition.GetRecognition(
            pb.GetRecognitionRequest(name=response.recognition), metadata=tenant_a.md
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_same_text_from_flac_and_raw_pcm(tenant_a: Client) -> None:
    wav = await tenant_a.recognition.Recognize(
        pb.RecognizeRequest(config=_config(), content=audio("en_16k.wav"), persist=False),
        metadata=tenant_a.md,
    )
    assert wav.recognition == "" and wav.recognition_id == 0
    pcm, rate, channels = pcm_of_wav(audio("en_16k.wav"))
    raw = await tenant_a.recognition.Recognize(
        pb.RecognizeRequest(
            config=_config(
                encoding=Encoding.ENCODING_LINEAR16, sample_rate_hertz=rate, audio_channel_count=channels
            ),
            content=pcm,
            persist=False,
        ),
        metadata=tenant_a.md,
    )
    assert raw.transcript == wav.transcript
    flac = await tenant_a.recognition.Recognize(
        pb.RecognizeRequest(config=_config(), content=audio("en_44k1_stereo.flac"), persist=False),
        metadata=tenant_a.md,
    )
    assert flac.transcript and flac.metadata.audio_duration_ms > 0


async def test_itn_and_punctuation_switches(tenant_a: Client) -> None:
    plain = await tenant_a.recognition.Recognize(
        pb.RecognizeRequest(
            config=_config(enable_punctuation=False, enable_itn=False),
            content=audio("zh_16k.wav"),
            persist=False,
        ),
        metadata=tenant_a.md,
    )
    assert plain.results and plain.results[0].transcript == plain.results[0].transcript_raw


async def test_request_id_is_idempotent(tenant_a: Client) -> None:
    request = pb.RecognizeRequest(config=_config(), content=audio("en_16k.wav"), request_id="order-7")
    first = await tenant_a.recognition.Recognize(request, metadata=tenant_a.md)
    again = await tenant_a.recognition.Recognize(request, metadata=tenant_a.md)
    assert again.recognition_id == first.recognition_id and again.transcript == first.transcript
    assert again.metadata.request_id == "order-7"


async def test_list_models(tenant_a: Client) -> None:
    response = await tenant_a.recognition.ListModels(pb.ListModelsRequest(), metadata=tenant_a.md)
    (model,) = response.models
    assert model.name == "model" and model.family == "paraformer" and model.is_default
    assert model.hotword_mode == model_pb2.HOTWORD_MODE_NONE
    assert model.device == "cpu" and model.dtype == "float32" and model.sample_rate_hertz == 16000


async def _requests(
    first: pb.StreamingRecognizeRequest, data: bytes, sizes: list[int]
) -> AsyncIterator[pb.StreamingRecognizeRequest]:
    yield first
    pos = 0
    index = 0
    while pos < len(data):
        size = sizes[index % len(sizes)]
        index += 1
        yield pb.StreamingRecognizeRequest(audio_content=data[pos : pos + size])
        pos += size


async def test_streaming_live_pcm_in_odd_chunks(tenant_a: Client) -> None:
    pcm, rate, _ = pcm_of_wav(audio("long_16k.wav"))
    pcm = pcm[: rate * 2 * 20]  # 20 s: several segments, interim results on the way
    sizes = [random.Random(7).choice([1, 3, 777, 4097, 10_001, 32_003]) for _ in range(64)]
    first = pb.StreamingRecognizeRequest(
        streaming_config=pb.StreamingRecognitionConfig(
            config=_config(
                encoding=Encoding.ENCODING_LINEAR16, sample_rate_hertz=rate, audio_channel_count=1
            ),
            interim_results=True,
            labels={"stream": "live"},
        )
    )
    responses = [
        r
        async for r in tenant_a.recognition.StreamingRecognize(
            _requests(first, pcm, sizes), metadata=tenant_a.md
        )
    ]
    last = responses[-1]
    assert last.speech_event_type == pb.SPEECH_EVENT_TYPE_END_OF_STREAM
    assert all(r.speech_event_type != pb.SPEECH_EVENT_TYPE_END_OF_STREAM for r in responses[:-1])
    finals = [res for r in responses for res in r.results if res.is_final]
    assert finals and all(res.stability == 1.0 for res in finals)
    assert any(not res.is_final for r in responses for res in r.results), "expected interim results"
    starts = [res.segment.start_offset_ms for res in finals]
    assert starts == sorted(starts) and finals[-1].segment.end_offset_ms <= 20_000
    assert last.transcript and last.metadata.audio_duration_ms == 20_000
    stored = await tenant_a.recognition.GetRecognition(
        pb.GetRecognitionRequest(name=last.recognition), metadata=tenant_a.md
    )
    assert stored.recognition.transcript == last.transcript and stored.recognition.labels == {
        "stream": "live"
    }


async def test_streaming_upload_of_a_container_matches_unary(tenant_a: Client) -> None:
    data = audio("en_44k1_stereo.flac")
    unary = await tenant_a.recognition.Recognize(
        pb.RecognizeRequest(config=_config(), content=data, persist=False), metadata=tenant_a.md
    )
    first = pb.StreamingRecognizeRequest(
        streaming_config=pb.StreamingRecognitionConfig(config=_config(), persist=False)
    )
    responses = [
        r
        async for r in tenant_a.recognition.StreamingRecognize(
            _requests(first, data, [1, 999, 4_095]), metadata=tenant_a.md
        )
    ]
    (last,) = responses
    assert last.speech_event_type == pb.SPEECH_EVENT_TYPE_END_OF_STREAM
    assert last.transcript == unary.transcript and last.recognition_id == 0
    assert [r.segment for r in last.results] == list(unary.results)
