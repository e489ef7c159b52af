"""Hostile and broken input: each gets a clear status with details, and the server keeps serving."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import grpc
import pytest

from lingting.asr.v1 import hotword_pb2, recognition_pb2
from lingting.asr.v1 import recognition_service_pb2 as pb
from service.config import Limits
from tests.service.conftest import TEST_LIMITS, Client, Running, audio, start_server
from tests.service.helpers import (
    error_info,
    field_violations,
    pcm_of_wav,
    retry_info,
    wav_bytes,
    wav_claiming_samples,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

INVALID = grpc.StatusCode.INVALID_ARGUMENT


async def _fails(client: Client, request: pb.RecognizeRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.recognition.Recognize(request, metadata=client.md)
    # ... and the server still answers a good request right after.
    good = await client.recognition.Recognize(
        pb.RecognizeRequest(
            config=recognition_pb2.RecognitionConfig(), content=audio("en_16k.wav"), persist=False
        ),
        metadata=client.md,
    )
    assert good.transcript
    return err.value


def _req(content: bytes, **config: object) -> pb.RecognizeRequest:
    return pb.RecognizeRequest(config=recognition_pb2.RecognitionConfig(**config), content=content)  # type: ignore[arg-type]


def _reason(err: grpc.aio.AioRpcError) -> str:
    info = error_info(err)
    assert info is not None, err
    assert info.domain == "lingting.asr.v1"
    return info.reason


async def test_missing_config(tenant_a: Client) -> None:
    err = await _fails(tenant_a, pb.RecognizeRequest(content=audio("en_16k.wav")))
    assert err.code() == INVALID and field_violations(err) == ["config"]


async def test_unknown_encoding(tenant_a: Client) -> None:
    err = await _fails(tenant_a, _req(audio("en_16k.wav"), encoding=99))
    assert err.code() == INVALID and _reason(err) == "UNSUPPORTED_ENCODING"
    assert field_violations(err) == ["config.encoding"]


async def test_linear16_without_rate(tenant_a: Client) -> None:
    err = await _fails(tenant_a, _req(b"\x00\x01" * 1000, encoding=recognition_pb2.ENCODING_LINEAR16))
    assert err.code() == INVALID and field_violations(err) == ["config.sample_rate_hertz"]


async def test_empty_audio(tenant_a: Client) -> None:
    err = await _fails(tenant_a, _req(b""))
    assert err.code() == INVALID and field_violations(err) == ["content"]


async def test_random_bytes(tenant_a: Client) -> None:
    err = await _fails(tenant_a, _req(os.urandom(50_000)))
    assert err.code() == INVALID and _reason(err) in ("AUDIO_DECODE_FAILED", "UNSUPPORTED_ENCODING")


async def test_truncated_wav(tenant_a: Client) -> None:
    err = await _fails(tenant_a, _req(audio("en_16k.wav")[:30]))
    assert err.code() == INVALID and _reason(err) == "AUDIO_DECODE_FAILED"


async def test_wav_header_claiming_2_pow_31_samples(tenant_a: Client) -> None:
    pcm, _, _ = pcm_of_wav(audio("en_16k.wav"))
    data = wav_claiming_samples(2**31, pcm[:32_000])
    # Refused as lying or too long, or decoded as the 1 s it really holds: no crash, no huge allocation.
    try:
        response = await tenant_a.recognition.Recognize(_req(data), metadata=tenant_a.md)
    except grpc.aio.AioRpcError as err:
        assert err.code() == INVALID and _reason(err) in ("AUDIO_DECODE_FAILED", "AUDIO_TOO_LONG")
    else:
        assert response.metadata.audio_duration_ms == 1000
    await _fails(tenant_a, _req(b""))  # still serving


async def test_audio_over_the_limits(tenant_a: Client) -> None:
    too_big = b"\x00" * (TEST_LIMITS.max_audio_bytes + 1)
    err = await _fails(tenant_a, _req(too_big))
    assert err.code() == INVALID and _reason(err) == "AUDIO_TOO_LARGE"
    # 130 s of silence at 8 kHz is under the byte limit but over the 120 s duration limit.
    long_wav = wav_bytes(b"\x00\x00" * 8000 * 130, rate=8000)
    err = await _fails(tenant_a, _req(long_wav))
    assert err.code() == INVALID and _reason(err) == "AUDIO_TOO_LONG"


async def test_ten_thousand_hotwords(tenant_a: Client) -> None:
    hotwords = [hotword_pb2.Hotword(phrase=f"词{i}") for i in range(10_000)]
    err = await _fails(
        tenant_a, _req(audio("en_16k.wav"), hotword_config=recognition_pb2.HotwordConfig(hotwords=hotwords))
    )
    assert err.code() == INVALID and _reason(err) == "TOO_MANY_HOTWORDS"


async def test_bad_hotwords(tenant_a: Client) -> None:
    for hotword, field in (
        (hotword_pb2.Hotword(phrase="  "), "config.hotword_config.hotwords[0].phrase"),
        (hotword_pb2.Hotword(phrase="x", boost=float("nan")), "config.hotword_config.hotwords[0].boost"),
        (hotword_pb2.Hotword(phrase="x" * 300), "config.hotword_config.hotwords[0].phrase"),
    ):
        config = {"hotword_config": recognition_pb2.HotwordConfig(hotwords=[hotword])}
        err = await _fails(tenant_a, _req(audio("en_16k.wav"), **config))
        assert err.code() == INVALID and field_violations(err) == [field]


async def test_one_megabyte_of_labels(tenant_a: Client) -> None:
    big = pb.RecognizeRequest(
        config=recognition_pb2.RecognitionConfig(),
        content=audio("en_16k.wav"),
        labels={"call_id": "x" * 1_000_000},
    )
    err = await _fails(tenant_a, big)
    assert err.code() == INVALID and field_violations(err)[0].startswith("labels")
    many = pb.RecognizeRequest(
        config=recognition_pb2.RecognitionConfig(),
        content=audio("en_16k.wav"),
        labels={f"k{i}": "v" * 100 for i in range(10_000)},
    )
    err = await _fails(tenant_a, many)
    assert err.code() == INVALID and field_violations(err) == ["labels"]


async def test_invalid_utf8_in_a_string_field(running: Running, tenant_a: Client) -> None:
    # RecognizeRequest.request_id (field 4, a string) carrying bytes that are not UTF-8; built by hand
    # because the protobuf runtime refuses to serialise such a message.
    payload = b"\x0a\x00" + b"\x22\x03\xff\xfe\xfd"
    call = running.channel.unary_unary(
        "/lingting.asr.v1.RecognitionService/Recognize",
        request_serializer=lambda raw: raw,
        response_deserializer=pb.RecognizeResponse.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(payload, metadata=tenant_a.md)
    assert err.value.code() == INVALID and _reason(err.value) == "MALFORMED_REQUEST"
    # Invalid UTF-8 in a label value, in a hotword phrase: same.
    for payload in (
        b"\x1a\x07\x0a\x01k\x12\x02\xc3\x28",  # labels {"k": b"\xc3\x28"}
        b"\x0a\x07\x42\x05\x0a\x03\x0a\x01\xff",  # config.hotword_config.hotwords[0].phrase = b"\xff"
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(payload, metadata=tenant_a.md)
        assert err.value.code() == INVALID and _reason(err.value) == "MALFORMED_REQUEST"
    await _fails(tenant_a, _req(b""))  # still serving


async def _stream(*messages: pb.StreamingRecognizeRequest) -> AsyncIterator[pb.StreamingRecognizeRequest]:
    for message in messages:
        yield message


async def test_streams_without_config_or_audio(tenant_a: Client) -> None:
    cases = [
        (pb.StreamingRecognizeRequest(audio_content=b"\x00\x01"),),  # audio first
        (),  # nothing at all
        (
            pb.StreamingRecognizeRequest(streaming_config=pb.StreamingRecognitionConfig()),
        ),  # config without config
        (  # a second config
            pb.StreamingRecognizeRequest(streaming_config=pb.StreamingRecognitionConfig(config={})),
            pb.StreamingRecognizeRequest(streaming_config=pb.StreamingRecognitionConfig(config={})),
        ),
        (
            pb.StreamingRecognizeRequest(streaming_config=pb.StreamingRecognitionConfig(config={})),
        ),  # no audio
        (
            pb.StreamingRecognizeRequest(streaming_config=pb.StreamingRecognitionConfig(config={})),
            pb.StreamingRecognizeRequest(audio_content=os.urandom(3001)),
        ),
    ]
    for messages in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in tenant_a.recognition.StreamingRecognize(_stream(*messages), metadata=tenant_a.md):
                pass
        assert err.value.code() == INVALID, messages


async def test_stream_over_the_duration_limit(tenant_a: Client) -> None:
    config = recognition_pb2.RecognitionConfig(
        encoding=recognition_pb2.ENCODING_LINEAR16, sample_rate_hertz=8000, audio_channel_count=1
    )
    chunk = b"\x00\x00" * 8000 * 10  # 10 s per chunk
    messages = [pb.StreamingRecognizeRequest(streaming_config=pb.StreamingRecognitionConfig(config=config))]
    messages += [pb.StreamingRecognizeRequest(audio_content=chunk)] * 13
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in tenant_a.recognition.StreamingRecognize(_stream(*messages), metadata=tenant_a.md):
            pass
    assert err.value.code() == INVALID and _reason(err.value) == "AUDIO_TOO_LONG"


async def test_saturation_is_resource_exhausted_with_retry_info(
    running: Running, engine: object, sqlite_url: str
) -> None:
    limits = Limits(**{**TEST_LIMITS.__dict__, "max_in_flight": 1, "retry_after_s": 2.5})
    async with start_server(sqlite_url, engine, limits=limits) as small:  # type: ignore[arg-type]
        client = await small.new_tenant("busy")
        config = recognition_pb2.RecognitionConfig(
            encoding=recognition_pb2.ENCODING_LINEAR16, sample_rate_hertz=16000, audio_channel_count=1
        )
        stream = client.recognition.StreamingRecognize(metadata=client.md)
        streaming = pb.StreamingRecognitionConfig(config=config, interim_results=True)
        await stream.write(pb.StreamingRecognizeRequest(streaming_config=streaming))
        pcm, _, _ = pcm_of_wav(audio("en_16k.wav"))
        await stream.write(pb.StreamingRecognizeRequest(audio_content=pcm))
        first = await stream.read()  # a first (interim) result: the stream holds the only slot now
        assert first.results
        with pytest.raises(grpc.aio.AioRpcError) as err:
            for _ in range(50):
                await client.recognition.Recognize(_req(audio("en_16k.wav")), metadata=client.md)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        retry = retry_info(err.value)
        assert retry is not None and retry.retry_delay.ToMilliseconds() == 2500
        await stream.done_writing()
        while (await stream.read()) is not grpc.aio.EOF:
            pass
        ok = await client.recognition.Recognize(_req(audio("en_16k.wav")), metadata=client.md)
        assert ok.transcript
