"""The Java client example, built offline and run against a live Lingting server.

``scripts/java_offline_build.sh`` compiles ``java_client_example/`` once per session with Debian's
protoc, grpc-java plugin and jars (the users' Maven build needs Maven Central). A server on
127.0.0.1 with a fresh SQLite database and the parity Paraformer serves two tenants made through
TenantService; each example is run as its own JVM and its ``KEY: value`` output is checked against
what Python's own client gets from the same server for the same audio.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from lingting.asr.v1 import hotword_pb2, hotword_set_service_pb2, recognition_pb2
from lingting.asr.v1 import recognition_service_pb2 as pb
from tests.conftest import REPO_ROOT
from tests.dbutil import migrated_database
from tests.service.conftest import AUDIO_DIR, TEST_LIMITS, Client, Running, audio, start_server
from tests.service.helpers import pcm_of_wav

pytestmark = [pytest.mark.java, pytest.mark.asyncio(loop_scope="session")]

BUILD_SCRIPT = REPO_ROOT / "scripts" / "java_offline_build.sh"
FAST_JVM = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss512k")
MAIN_CLASS = "com.lingting.example.Main"
STREAM_CHUNK_BYTES = 3200  # what `stream --chunk-ms 100` sends for 16 kHz mono


@dataclass(frozen=True)
class JavaRun:
    """One run of the example CLI: exit status and its ``KEY: value`` lines."""

    returncode: int
    stdout: str
    stderr: str

    def values(self, key: str) -> list[str]:
        prefix = f"{key}: "
        return [line[len(prefix) :] for line in self.stdout.splitlines() if line.startswith(prefix)]

    def value(self, key: str) -> str:
        found = self.values(key)
        assert len(found) == 1, f"expected one {key} line, got {found}\n{self.stdout}\n{self.stderr}"
        return found[0]


@pytest.fixture(scope="session")
def java_classpath(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Compiles the example once per session; skips when the JDK or Debian's grpc-java is absent."""
    missing = [tool for tool in ("java", "javac", "protoc") if shutil.which(tool) is None]
    if not Path("/usr/bin/grpc_java_plugin").exists() or not Path("/usr/share/java/grpc-api.jar").exists():
        missing.append("Debian grpc-java packages")
    if missing:
        reason = f"needs {', '.join(missing)} (scripts/test_setup.sh installs them)"
        if os.environ.get("LINGTING_REQUIRE_JAVA") == "1":  # `make test` sets it: CI must not skip
            pytest.fail(reason)
        pytest.skip(reason)
    build_dir = tmp_path_factory.mktemp("java-build")
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT), str(build_dir)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"offline Java build failed:\n{done.stdout}\n{done.stderr}"
    return (build_dir / "classpath").read_text().strip()


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_database("sqlite", tmp_path_factory.mktemp("java-db")) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def running(sqlite_url: str) -> AsyncIterator[Running]:
    # No engine passed: the server loads its model itself, as `lingting serve` does.
    async with start_server(sqlite_url, None) as run:
        yield run


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tenant(running: Running) -> Client:
    return await running.new_tenant("java-a")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def other_tenant(running: Running) -> Client:
    return await running.new_tenant("java-b")


@dataclass(frozen=True)
class JavaCli:
    """The compiled example CLI pointed at the running server."""

    classpath: str
    port: int

    async def __call__(self, secret: str, *args: str, deadline_ms: int | None = None) -> JavaRun:
        """Runs one command in a JVM; in a thread, so the in-process server keeps serving."""
        command = ["java", *FAST_JVM, "-cp", self.classpath, MAIN_CLASS]
        command += ["--target", f"127.0.0.1:{self.port}", "--api-key", secret]
        if deadline_ms is not None:
            command += ["--deadline-ms", str(deadline_ms)]
        command += list(args)
        done = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, timeout=120, check=False
        )
        return JavaRun(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def java(java_classpath: str, running: Running) -> JavaCli:
    return JavaCli(java_classpath, running.port)


def segment_lines(results: Iterable[recognition_pb2.SegmentResult]) -> list[str]:
    """What the examples print for each segment."""
    return [f"{s.start_offset_ms}-{s.end_offset_ms} {s.transcript}" for s in results]


def wav(name: str) -> str:
    return str(AUDIO_DIR / name)


async def python_transcript(client: Client, name: str, **config: object) -> pb.RecognizeResponse:
    return await client.recognition.Recognize(
        pb.RecognizeRequest(
            config=recognition_pb2.RecognitionConfig(**config),  # type: ignore[arg-type]
            content=audio(name),
            persist=False,
        ),
        metadata=client.md,
    )


async def test_models(java: JavaCli, tenant: Client) -> None:
    out = await java(tenant.secret, "models")
    assert out.returncode == 0, out.stderr
    assert out.value("MODEL").startswith("model family=paraformer ") and out.value("MODEL").endswith(
        "default=true"
    )


async def test_transcribe_unary_is_stored_with_labels(java: JavaCli, tenant: Client) -> None:
    out = await java(tenant.secret, "transcribe", wav("en_16k.wav"), "--label", "call_id=j-1")
    assert out.returncode == 0, out.stdout + out.stderr
    reference = await python_transcript(tenant, "en_16k.wav")
    assert out.value("MODE") == "unary"
    assert reference.transcript and out.value("TRANSCRIPT") == reference.transcript
    assert out.value("AUDIO_MS") == "3776"
    rec_id = int(out.value("RECOGNITION_ID"))
    assert out.value("RECOGNITION") == f"recognitions/{rec_id}"
    stored = await tenant.recognition.GetRecognition(
        pb.GetRecognitionRequest(name=f"recognitions/{rec_id}"), metadata=tenant.md
    )
    assert stored.recognition.transcript == reference.transcript
    assert dict(stored.recognition.labels) == {"call_id": "j-1"}


async def test_transcribe_large_file_streams_the_upload(java: JavaCli, tenant: Client) -> None:
    # A threshold below the file size sends it through StreamingRecognize in 256 KiB chunks.
    out = await java(tenant.secret, "transcribe", wav("long_16k.wav"), "--stream-threshold", "100000")
    assert out.returncode == 0, out.stdout + out.stderr
    assert Path(wav("long_16k.wav")).stat().st_size > 256 * 1024
    reference = await python_transcript(tenant, "long_16k.wav")
    assert out.value("MODE") == "stream"
    assert out.value("TRANSCRIPT") == reference.transcript
    assert len(reference.results) > 1
    assert out.values("SEGMENT") == segment_lines(reference.results)
    assert int(out.value("RECOGNITION_ID")) > 0


async def _python_live_stream(client: Client, name: str) -> pb.StreamingRecognizeResponse:
    pcm, rate, channels = pcm_of_wav(audio(name))

    async def requests() -> AsyncIterator[pb.StreamingRecognizeRequest]:
        yield pb.StreamingRecognizeRequest(
            streaming_config=pb.StreamingRecognitionConfig(
                config=recognition_pb2.RecognitionConfig(
                    encoding=recognition_pb2.ENCODING_LINEAR16,
                    sample_rate_hertz=rate,
                    audio_channel_count=channels,
                ),
                persist=False,
                interim_results=True,
            )
        )
        for pos in range(0, len(pcm), STREAM_CHUNK_BYTES):
            yield pb.StreamingRecognizeRequest(audio_content=pcm[pos : pos + STREAM_CHUNK_BYTES])

    responses = [r async for r in client.recognition.StreamingRecognize(requests(), metadata=client.md)]
    return responses[-1]


async def test_stream_wav_gives_interim_and_final_results(java: JavaCli, tenant: Client) -> None:
    out = await java(tenant.secret, "stream", wav("long_16k.wav"), "--speed", "0", "--label", "mode=live")
    assert out.returncode == 0, out.stdout + out.stderr
    reference = await _python_live_stream(tenant, "long_16k.wav")
    assert out.value("TRANSCRIPT") == reference.transcript != ""
    assert out.values("INTERIM"), "expected interim results"
    finals = out.values("FINAL")
    starts = [int(line.split("-", 1)[0]) for line in finals]
    assert finals and starts == sorted(starts)
    rec_id = int(out.value("RECOGNITION_ID"))
    stored = await tenant.recognition.GetRecognition(
        pb.GetRecognitionRequest(name=f"recognitions/{rec_id}"), metadata=tenant.md
    )
    assert stored.recognition.transcript == reference.transcript
    assert dict(stored.recognition.labels) == {"mode": "live"}


async def test_stream_wav_paced_in_real_time(java: JavaCli, tenant: Client) -> None:
    # 3.8 s of audio at 4x real time: about a second of pacing.
    out = await java(tenant.secret, "stream", wav("en_16k.wav"), "--speed", "4")
    assert out.returncode == 0, out.stdout + out.stderr
    reference = await _python_live_stream(tenant, "en_16k.wav")
    assert out.value("TRANSCRIPT") == reference.transcript
    assert out.value("SENT_CHUNKS") == "38"
    assert out.values("FINAL")


async def test_hotword_set_lifecycle(java: JavaCli, tenant: Client) -> None:
    out = await java(
        tenant.secret,
        "hotwords",
        wav("en_16k.wav"),
        "--set-id",
        "java-products",
        "--phrase",
        "lingting",
        "--phrase",
        "seaco",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    created, updated = out.value("CREATED"), out.value("UPDATED")
    assert created.startswith("hotwordSets/java-products id=")
    created_etag = created.rsplit("etag=", 1)[1]
    assert updated.startswith("hotwordSets/java-products etag=") and "phrases=3" in updated
    assert f"etag={created_etag} " not in updated
    assert out.value("STALE_UPDATE").startswith("ABORTED")
    assert out.value("APPLIED_HOTWORD_SETS") == "hotwordSets/java-products"
    # The same effective hotwords inline from Python give the same transcript.
    reference = await python_transcript(
        tenant,
        "en_16k.wav",
        hotword_config=recognition_pb2.HotwordConfig(
            hotwords=[
                hotword_pb2.Hotword(phrase="lingting"),
                hotword_pb2.Hotword(phrase="seaco"),
                hotword_pb2.Hotword(phrase="hotword", boost=3.0),
            ]
        ),
    )
    assert out.value("TRANSCRIPT") == reference.transcript
    assert out.values("WARNING") == list(reference.metadata.warnings)
    assert int(out.value("RECOGNITION_ID")) > 0
    assert out.value("DELETED") == "hotwordSets/java-products"
    assert out.value("AFTER_DELETE") == "NOT_FOUND"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await tenant.hotwords.GetHotwordSet(
            hotword_set_service_pb2.GetHotwordSetRequest(name="hotwordSets/java-products"), metadata=tenant.md
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_history_pages_by_label_and_time(java: JavaCli, tenant: Client) -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    ids = []
    for index in range(3):
        response = await tenant.recognition.Recognize(
            pb.RecognizeRequest(
                config=recognition_pb2.RecognitionConfig(),
                content=audio("short_0p3s_16k.wav" if index else "en_16k.wav"),
                labels={"batch": "history-test", "n": str(index)},
            ),
            metadata=tenant.md,
        )
        ids.append(response.recognition_id)
    await tenant.recognition.Recognize(
        pb.RecognizeRequest(
            config=recognition_pb2.RecognitionConfig(), content=audio("en_16k.wav"), labels={"batch": "other"}
        ),
        metadata=tenant.md,
    )
    since = before.isoformat().replace("+00:00", "Z")
    out = await java(
        tenant.secret,
        "history",
        "--label",
        "batch=history-test",
        "--since",
        since,
        "--page-size",
        "2",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    listed = [int(line.split(" ", 1)[0]) for line in out.values("RECOGNITION")]
    assert listed == ids[::-1]  # newest first, only the labelled ones
    assert out.values("PAGE") == ["1 size=2 more=true", "2 size=1 more=false"]
    assert out.value("TOTAL") == "3"
    assert "n=0" in out.values("RECOGNITION")[-1]

    until = before.isoformat().replace("+00:00", "Z")
    empty = await java(tenant.secret, "history", "--label", "batch=history-test", "--until", until)
    assert empty.returncode == 0 and empty.value("TOTAL") == "0"


async def test_get_recognition_with_words(java: JavaCli, tenant: Client) -> None:
    response = await tenant.recognition.Recognize(
        pb.RecognizeRequest(
            config=recognition_pb2.RecognitionConfig(enable_word_time_offsets=True),
            content=audio("en_16k.wav"),
            labels={"call_id": "w-1"},
        ),
        metadata=tenant.md,
    )
    out = await java(tenant.secret, "get", str(response.recognition_id))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.value("RECOGNITION_ID") == str(response.recognition_id)
    assert out.value("STATE") == "STATE_SUCCEEDED"
    assert out.value("TRANSCRIPT") == response.transcript
    assert out.value("LABEL") == "call_id=w-1"
    words = [f"{w.start_offset_ms}-{w.end_offset_ms} {w.word}" for s in response.results for w in s.words]
    assert words and out.values("WORD") == words
    assert out.values("SEGMENT") == segment_lines(response.results)


async def test_other_tenants_recognition_is_not_found(
    java: JavaCli, tenant: Client, other_tenant: Client
) -> None:
    theirs = await other_tenant.recognition.Recognize(
        pb.RecognizeRequest(config=recognition_pb2.RecognitionConfig(), content=audio("short_0p3s_16k.wav")),
        metadata=other_tenant.md,
    )
    out = await java(tenant.secret, "get", str(theirs.recognition_id))
    assert out.returncode == 3
    assert out.value("ERROR").startswith("NOT_FOUND ")
    assert out.value("ERROR_REASON") == "NOT_FOUND (lingting.asr.v1)"
    mine = await java(other_tenant.secret, "get", str(theirs.recognition_id))
    assert mine.returncode == 0 and mine.value("RECOGNITION_ID") == str(theirs.recognition_id)


async def test_tiny_deadline_is_deadline_exceeded(java: JavaCli, tenant: Client) -> None:
    out = await java(tenant.secret, "transcribe", wav("long_16k.wav"), deadline_ms=1)
    assert out.returncode == 3, out.stdout + out.stderr
    assert out.value("ERROR").startswith("DEADLINE_EXCEEDED")


async def test_error_details_are_decoded(java: JavaCli, tenant: Client, tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    out = await java(tenant.secret, "transcribe", str(empty))
    assert out.returncode == 3
    assert out.value("ERROR").startswith("INVALID_ARGUMENT ")
    assert out.value("ERROR_REASON") == "AUDIO_EMPTY (lingting.asr.v1)"
    assert out.value("FIELD_VIOLATION").startswith("content: ")


async def test_wrong_api_key_is_unauthenticated(java: JavaCli) -> None:
    out = await java("lt-not-a-real-key", "models")
    assert out.returncode == 3
    assert out.value("ERROR").startswith("UNAUTHENTICATED")


async def test_overload_carries_retry_delay(java: JavaCli, sqlite_url: str) -> None:
    # A second server on the same database that admits no recognition at all.
    limits = dataclasses.replace(TEST_LIMITS, max_in_flight=0, retry_after_s=2.5)
    async with start_server(sqlite_url, None, limits=limits) as saturated:
        client = await saturated.new_tenant("java-overload")
        out = await dataclasses.replace(java, port=saturated.port)(
            client.secret, "transcribe", wav("short_0p3s_16k.wav")
        )
    assert out.returncode == 3, out.stdout + out.stderr
    assert out.value("ERROR").startswith("RESOURCE_EXHAUSTED ")
    assert out.value("ERROR_REASON") == "OVERLOADED (lingting.asr.v1)"
    assert out.value("RETRY_DELAY_MS") == "2500"
