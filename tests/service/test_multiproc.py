"""``lingting serve --frontends 2``: a real multi-process server on 127.0.0.1 (bundled model, CPU).

The same requests go to it and to a single-process server in this process; the answers must match.
Per-process request counts come from the front-ends' INFO log lines (``proc=frontend-N``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from asr_engine.engine import Engine
from lingting.asr.v1 import (
    hotword_pb2,
    recognition_pb2,
    recognition_service_pb2,
    recognition_service_pb2_grpc,
    tenant_service_pb2,
    tenant_service_pb2_grpc,
)
from service.db import Database
from tests.conftest import REPO_ROOT
from tests.dbutil import migrated_database
from tests.service.conftest import ADMIN_TOKEN, Running, bearer, start_server

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

SAMPLES = REPO_ROOT / "asr_engine" / "bundled" / "lingting-mini" / "samples"
CASES = json.loads((SAMPLES / "samples.json").read_text())
START_TIMEOUT_S = 240.0
pb = recognition_service_pb2


@dataclass
class Served:
    """A ``lingting serve --frontends 2`` subprocess and what its log says about it."""

    process: subprocess.Popen[bytes]
    log: Path
    port: int
    db_url: str
    pids: dict[str, int]
    descendants: set[int]

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def served_by(self, method: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for match in re.finditer(
            rf"proc=(frontend-\d+) logger=lingting.rpc msg=\"rpc method=\S+/{method} ", self.text()
        ):
            counts[match.group(1)] = counts.get(match.group(1), 0) + 1
        return counts


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                if fields[0] != "Z":
                    parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


async def _wait_serving(served: Served) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if served.process.poll() is not None:
                raise AssertionError(f"the server exited with {served.process.returncode}:\n{served.text()}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2.0)
                if (
                    reply.status == health_pb2.HealthCheckResponse.SERVING
                    and "lingting serving on" in served.text()
                ):
                    return
            await asyncio.sleep(0.25)
    raise AssertionError(f"not SERVING after {START_TIMEOUT_S} s:\n{served.text()}")


@contextlib.contextmanager
def _spawn(tmp: Path) -> Iterator[Served]:
    """Start the server (not waiting); on exit make sure it is gone."""
    with migrated_database("sqlite", tmp) as url:
        port = _free_port()
        env = {
            **os.environ,
            "LINGTING_ADMIN_TOKEN": ADMIN_TOKEN,
            "LINGTING_DEVICE": "cpu",
            "LINGTING_DATA_DIR": str(tmp),
            "LINGTING_SHUTDOWN_GRACE_S": "2",
        }
        log = tmp / "server.log"
        command = [sys.executable, "-m", "service.cli", "serve", "--frontends", "2", "--port", str(port)]
        command += ["--database-url", url, "--log-level", "INFO"]
        with log.open("wb") as out:
            process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)
        served = Served(process, log, port, url, {}, set())
        try:
            yield served
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(30)


async def _started(served: Served) -> Served:
    await _wait_serving(served)
    line = re.search(r"supervisor pid=(\d+) engine pid=(\d+) frontends pids=([\d,]+)", served.text())
    assert line is not None, served.text()
    served.pids = {"supervisor": int(line.group(1)), "engine": int(line.group(2))}
    served.pids |= {f"frontend-{i}": int(p) for i, p in enumerate(line.group(3).split(","))}
    served.descendants = _children(served.process.pid)
    assert {served.pids["engine"], served.pids["frontend-0"], served.pids["frontend-1"]} <= served.descendants
    return served


def _leftovers(served: Served) -> tuple[set[int], list[Path]]:
    """Processes and files of this server still around (polled for a few seconds)."""
    deadline = time.monotonic() + 10
    while True:
        alive = {pid for pid in served.descendants if _alive(pid)}
        files = list(Path("/dev/shm").glob(f"lingting-{served.pids['supervisor']}-*"))
        socket_dir = re.search(r"engine socket (\S+)/engine.sock", served.text())
        if socket_dir and Path(socket_dir.group(1)).exists():
            files.append(Path(socket_dir.group(1)))
        if (not alive and not files) or time.monotonic() > deadline:
            return alive, files
        time.sleep(0.2)


@pytest.fixture(scope="module")
def bundled_engine() -> Engine:
    return Engine.load(None, device="cpu")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pair(
    tmp_path_factory: pytest.TempPathFactory, bundled_engine: Engine
) -> AsyncIterator[tuple[Served, Running, Served]]:
    """The multi-process server, a single-process one (in this process), and a second multi-process
    server for the engine-death test (started together: the startups overlap)."""
    with (
        _spawn(tmp_path_factory.mktemp("mp")) as multi,
        _spawn(tmp_path_factory.mktemp("mp-kill")) as doomed,
        migrated_database("sqlite", tmp_path_factory.mktemp("single")) as url,
    ):
        async with start_server(url, bundled_engine) as single:
            yield await _started(multi), single, await _started(doomed)


@dataclass
class Clients:
    multi: recognition_service_pb2_grpc.RecognitionServiceStub
    single: recognition_service_pb2_grpc.RecognitionServiceStub
    multi_md: tuple[tuple[str, str], ...]
    single_md: tuple[tuple[str, str], ...]
    tenant_id: int


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def clients(pair: tuple[Served, Running, Served]) -> AsyncIterator[Clients]:
    multi, single, _ = pair
    async with grpc.aio.insecure_channel(f"127.0.0.1:{multi.port}") as channel:
        tenants = tenant_service_pb2_grpc.TenantServiceStub(channel)
        created = await tenants.CreateTenant(
            tenant_service_pb2.CreateTenantRequest(tenant={"display_name": "mp"}),
            metadata=bearer(ADMIN_TOKEN),
        )
        key = await tenants.CreateApiKey(
            tenant_service_pb2.CreateApiKeyRequest(parent=created.tenant.name, api_key={"display_name": "t"}),
            metadata=bearer(ADMIN_TOKEN),
        )
        there = await single.new_tenant("single")
        yield Clients(
            recognition_service_pb2_grpc.RecognitionServiceStub(channel),
            there.recognition,
            bearer(key.secret),
            there.md,
            int(created.tenant.name.rsplit("/", 1)[-1]),
        )


def _config(case: dict, **extra: object) -> recognition_pb2.RecognitionConfig:
    hotwords = [hotword_pb2.Hotword(phrase=p, boost=case.get("boost", 0.0)) for p in case.get("hotwords", ())]
    return recognition_pb2.RecognitionConfig(
        language_code=case["language"],
        enable_word_time_offsets=True,
        hotword_config=recognition_pb2.HotwordConfig(hotwords=hotwords),
        **extra,  # type: ignore[arg-type]
    )


def _answer(reply: pb.RecognizeResponse | pb.StreamingRecognizeResponse) -> tuple[object, ...]:
    """What must not depend on the server's process layout (no timing, no ids)."""
    meta = reply.metadata
    return (reply.transcript, reply.transcript_raw, meta.audio_duration_ms, meta.model, meta.language_code)


async def test_unary_answers_equal_the_single_process_servers(clients: Clients) -> None:
    for case in CASES:
        audio = (SAMPLES / case["file"]).read_bytes()
        request = pb.RecognizeRequest(config=_config(case), content=audio, persist=False)
        mine = await clients.multi.Recognize(request, metadata=clients.multi_md)
        theirs = await clients.single.Recognize(request, metadata=clients.single_md)
        assert _answer(mine) == _answer(theirs) and list(mine.results) == list(theirs.results)
        if "text_itn" in case:
            assert mine.transcript.rstrip(".。") == case["text_itn"].rstrip(".")


async def _stream(
    stub: recognition_service_pb2_grpc.RecognitionServiceStub,
    md: tuple[tuple[str, str], ...],
    config: recognition_pb2.RecognitionConfig,
    data: bytes,
) -> list[pb.StreamingRecognizeResponse]:
    async def requests() -> AsyncIterator[pb.StreamingRecognizeRequest]:
        yield pb.StreamingRecognizeRequest(
            streaming_config=pb.StreamingRecognitionConfig(config=config, interim_results=True, persist=False)
        )
        for start in range(0, len(data), 9600):
            yield pb.StreamingRecognizeRequest(audio_content=data[start : start + 9600])

    return [r async for r in stub.StreamingRecognize(requests(), metadata=md)]


async def test_streams_equal_the_single_process_servers(clients: Clients) -> None:
    # Live PCM: VAD endpointing in the front-end; every sample spoken in turn with pauses.
    pcm = b""
    for case in CASES:
        with wave.open(str(SAMPLES / case["file"])) as w:
            pcm += w.readframes(w.getnframes()) + b"\x00\x00" * 12000
    live = _config(
        {"language": ""},
        encoding=recognition_pb2.ENCODING_LINEAR16,
        sample_rate_hertz=16000,
        audio_channel_count=1,
    )
    upload = _config(CASES[2])
    for config, data in ((live, pcm), (upload, (SAMPLES / CASES[2]["file"]).read_bytes())):
        mine = await _stream(clients.multi, clients.multi_md, config, data)
        theirs = await _stream(clients.single, clients.single_md, config, data)
        finals = [[r for m in replies for r in m.results if r.is_final] for replies in (mine, theirs)]
        assert finals[0] == finals[1] and finals[0]
        assert _answer(mine[-1]) == _answer(theirs[-1]) and mine[-1].transcript


async def test_connections_spread_over_the_frontends_and_history_lands_in_one_database(
    pair: tuple[Served, Running, Served], clients: Clients
) -> None:
    multi = pair[0]
    before = multi.served_by("Recognize")
    audio = (SAMPLES / "en_2.wav").read_bytes()
    channels = [
        grpc.aio.insecure_channel(f"127.0.0.1:{multi.port}", options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(16)
    ]
    try:
        stubs = [recognition_service_pb2_grpc.RecognitionServiceStub(c) for c in channels]
        replies = await asyncio.gather(
            *(
                stub.Recognize(
                    pb.RecognizeRequest(
                        config=_config(CASES[1]), content=audio, persist=True, labels={"batch": "spread"}
                    ),
                    metadata=clients.multi_md,
                )
                for stub in stubs
                for _ in range(2)
            )
        )
    finally:
        for channel in channels:
            await channel.close()
    assert len({r.transcript for r in replies}) == 1 and replies[0].transcript
    after = multi.served_by("Recognize")
    per_frontend = {p: after.get(p, 0) - before.get(p, 0) for p in ("frontend-0", "frontend-1")}
    assert sum(per_frontend.values()) == 32 and min(per_frontend.values()) > 0, per_frontend
    with Database(multi.db_url) as db:
        from service.db.recognitions import RecognitionFilter

        page = db.recognitions.list_recognitions(
            clients.tenant_id, RecognitionFilter(labels={"batch": "spread"}), page_size=100
        )
    assert sorted(r.id for r in page.items) == sorted(r.recognition_id for r in replies)
    assert len({r.recognition_id for r in replies}) == 32


async def test_killing_the_engine_process_stops_the_server_with_an_error(
    pair: tuple[Served, Running, Served],
) -> None:
    doomed = pair[2]
    os.kill(doomed.pids["engine"], signal.SIGKILL)
    code = await asyncio.to_thread(doomed.process.wait, 60)
    assert code == 1
    assert f"the engine process (pid {doomed.pids['engine']}) exited with code -9" in doomed.text()
    assert _leftovers(doomed) == (set(), [])


async def test_sigterm_stops_every_process_and_leaves_no_shared_memory(
    pair: tuple[Served, Running, Served],
) -> None:
    multi = pair[0]
    assert list(Path("/dev/shm").glob(f"lingting-{multi.pids['supervisor']}-*"))  # the arenas exist now
    multi.process.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(multi.process.wait, 60)
    assert code == 0, multi.text()[-3000:]
    assert _leftovers(multi) == (set(), [])
    assert "engine process stopped" in multi.text()


async def test_a_frontend_is_not_serving_until_the_engine_process_listens(
    tmp_path: Path, bundled_engine: Engine
) -> None:
    """A front-end server in this process: NOT_SERVING (and UNAVAILABLE calls) until an engine answers."""
    from asr_engine.remote.server import SegmentServer
    from service.config import Settings
    from service.engine_host import load_frontend_engine
    from service.server import create_server, engine_host, stop_server

    socket_path = tmp_path / "engine.sock"
    arena = Path("/dev/shm") / f"lingting-test-{os.getpid()}-health"
    with migrated_database("sqlite", tmp_path) as url, Database(url) as db:
        settings = Settings(host="127.0.0.1", port=0, database_url=url, device="cpu", admin_token=ADMIN_TOKEN)
        server, port = await create_server(
            settings,
            db=db,
            engine_loader=lambda: load_frontend_engine(
                socket_path,
                arena,
                8 << 20,
                name="health",
                vad_model_dir=None,
                punc_model_dir=None,
                torch_threads=1,
                on_lost=lambda: None,
            ),
            reuse_port=True,
        )
        segments = SegmentServer(bundled_engine)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                health = health_pb2_grpc.HealthStub(channel)
                recognition = recognition_service_pb2_grpc.RecognitionServiceStub(channel)
                for _ in range(8):  # the loader finishes at once; the engine is what it waits for
                    reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
                    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
                    await asyncio.sleep(0.25)
                tenant = db.tenants.create_tenant("health")
                _, secret = db.api_keys.create_api_key(tenant.id, "health")
                audio = (SAMPLES / CASES[0]["file"]).read_bytes()
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await recognition.Recognize(
                        pb.RecognizeRequest(config=_config(CASES[0]), content=audio), metadata=bearer(secret)
                    )
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
                await bundled_engine.start()
                await segments.listen(socket_path)
                await asyncio.wait_for(engine_host(server).wait_ready(), 60)
                reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
                served = await recognition.Recognize(
                    pb.RecognizeRequest(config=_config(CASES[0]), content=audio), metadata=bearer(secret)
                )
                assert served.transcript.rstrip(".") == CASES[0]["text_itn"].rstrip(".")
        finally:
            await stop_server(server, 0)
            await segments.close()
    assert not arena.exists()
