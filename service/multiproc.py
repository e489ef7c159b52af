"""``lingting serve --frontends N``: one engine process and N gRPC front-end processes on one port.

One Python process tops out at about one core of work, and a request costs ~1.6 ms of it (auth, gRPC,
decoding, post-processing, the history insert), far from what one GPU can serve. Here the engine
process owns the model (scheduler, features, decoding on the device) and nothing else; each front-end
is a complete grpc.aio server (interceptors, auth, database, audio decoding, VAD, post-processing)
whose engine sends cut segments to the engine process (``asr_engine.remote``). The front-ends listen on
the same port with SO_REUSEPORT, so the kernel spreads client connections over them.

This process only supervises: it checks the schema, spawns the children (``spawn``: CUDA cannot be
forked), reports when all are ready, and on SIGTERM/SIGINT stops the front-ends first (their calls
finish within ``shutdown_grace_s``) and then the engine. If any child dies, it stops the others and
exits non-zero. Children ignore SIGINT (a Ctrl-C reaches the whole process group; the order of the
shutdown is decided here) and stop by themselves if this process disappears.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from service.config import MIB, Settings
from service.engine_host import EngineHost

__all__ = ["run_multiprocess"]

log = logging.getLogger(__name__)

ENGINE = "engine"
_STOP_ENGINE_S = 10.0  # after the front-ends are gone, the engine has nothing left to finish


@dataclass(frozen=True)
class _ChildSpec:
    """What one child process needs (pickled to it by ``spawn``)."""

    role: str  # "engine" or "frontend-<i>"
    settings: Settings
    socket_path: str
    status: Connection  # the child's end of its status pipe (messages to the supervisor)
    arena_path: str = ""
    arena_bytes: int = 0
    worker_id: int = 0
    torch_threads: int = 1


def run_multiprocess(settings: Settings) -> int:
    """Blocking: serve with an engine process and ``settings.frontend_processes`` front-ends; exit code."""
    return asyncio.run(_Supervisor(settings).run())


class _Supervisor:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._events: asyncio.Queue[tuple[str, str, Any]] = asyncio.Queue()
        self._children: dict[str, BaseProcess] = {}
        self._pipes: dict[str, Connection] = {}
        self._run_dir: Path | None = None
        self._arena_glob: tuple[Path, str] | None = None

    async def run(self) -> int:
        from service.db import require_current

        settings = self._settings
        await asyncio.to_thread(require_current, settings.resolved_database_url)
        reservation, port = _reserve_port(settings.host, settings.port)
        settings = dataclasses.replace(settings, port=port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._events.put_nowait, ("signal", sig.name, None))
        try:
            self._spawn(settings)
            code = await self._watch(settings, reservation)
        finally:
            if reservation is not None:
                reservation.close()
            await self._stop_children()
            self._clean_files()
        return code

    # -- starting --------------------------------------------------------------------------------------
    def _spawn(self, settings: Settings) -> None:
        from asr_engine.remote.arena import arena_directory

        n = settings.frontend_processes
        self._run_dir = Path(tempfile.mkdtemp(prefix="lingting-"))
        socket_path = str(self._run_dir / "engine.sock")
        arena_bytes = settings.frontend_shm_mb * MIB
        arena_dir = arena_directory(n * arena_bytes)
        prefix = f"lingting-{os.getpid()}-"
        self._arena_glob = (arena_dir, prefix + "*") if arena_dir is not None else None
        log.info(
            "engine socket %s; arenas %s", socket_path, f"{arena_dir}/{prefix}*" if arena_dir else "memfd"
        )
        worker_base = _worker_base()
        threads = max(1, (os.cpu_count() or 1) // n)
        context = multiprocessing.get_context("spawn")
        specs = [_ChildSpec(ENGINE, settings, socket_path, self._pipe(context, ENGINE))]
        for i in range(n):
            role = f"frontend-{i}"
            specs.append(
                _ChildSpec(
                    role,
                    settings,
                    socket_path,
                    self._pipe(context, role),
                    arena_path=str(arena_dir / f"{prefix}{i}") if arena_dir is not None else "",
                    arena_bytes=arena_bytes,
                    worker_id=(worker_base + i) % 1024,
                    torch_threads=threads,
                )
            )
        for spec in specs:
            target = _engine_main if spec.role == ENGINE else _frontend_main
            process = context.Process(target=target, args=(spec,), name=f"lingting-{spec.role}")
            process.start()
            spec.status.close()  # the child holds its own copy; EOF here then means the child is gone
            self._children[spec.role] = process
            asyncio.get_running_loop().add_reader(process.sentinel, self._exited, spec.role)
        log.warning(
            "lingting processes: supervisor pid=%d engine pid=%s frontends pids=%s",
            os.getpid(),
            self._children[ENGINE].pid,
            ",".join(str(self._children[f"frontend-{i}"].pid) for i in range(n)),
        )

    def _pipe(self, context: Any, role: str) -> Connection:
        reader, writer = context.Pipe(duplex=False)
        self._pipes[role] = reader
        asyncio.get_running_loop().add_reader(reader.fileno(), self._status, role)
        return writer  # type: ignore[no-any-return]

    def _status(self, role: str) -> None:
        reader = self._pipes[role]
        try:
            message = reader.recv()
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(reader.fileno())
            return
        self._events.put_nowait(("status", role, message))

    def _exited(self, role: str) -> None:
        process = self._children[role]
        asyncio.get_running_loop().remove_reader(process.sentinel)
        process.join(2.0)  # the sentinel can fire a moment before the exit status is there to reap
        self._events.put_nowait(("exit", role, process.exitcode))

    # -- running ---------------------------------------------------------------------------------------
    async def _watch(self, settings: Settings, reservation: socket.socket | None) -> int:
        n = settings.frontend_processes
        bound: set[str] = set()
        ready: set[str] = set()
        while True:
            kind, role, value = await self._events.get()
            if kind == "signal":
                log.warning("%s received: shutting down", role)
                return 0
            if kind == "exit":
                what = "the engine process" if role == ENGINE else role
                pid = self._children[role].pid
                if role == ENGINE and ENGINE not in ready:
                    log.error("%s (pid %s) exited with code %s before its model was ready", what, pid, value)
                else:
                    log.error("%s (pid %s) exited with code %s; stopping the server", what, pid, value)
                return 1
            if value[0] == "bound" and role not in bound:
                bound.add(role)
                if len(bound) == n and reservation is not None:
                    reservation.close()  # every front-end holds the port now
            elif value[0] == "ready":
                ready.add(role)
                if role == ENGINE:
                    log.info("engine process ready: %s", value[1])
                if len(ready) == n + 1:
                    log.warning(
                        "lingting serving on %s:%d with %d front-end processes",
                        settings.host,
                        settings.port,
                        n,
                    )

    # -- stopping --------------------------------------------------------------------------------------
    async def _stop_children(self) -> None:
        """Front-ends first (they drain their calls), then the engine; whoever does not exit is killed."""
        frontends = [p for role, p in self._children.items() if role != ENGINE]
        await _terminate(frontends, self._settings.shutdown_grace_s + 10.0)
        engine = self._children.get(ENGINE)
        if engine is not None:
            await _terminate([engine], _STOP_ENGINE_S)
        loop = asyncio.get_running_loop()
        for process in self._children.values():
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(process.sentinel)
        for reader in self._pipes.values():
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(reader.fileno())
            reader.close()

    def _clean_files(self) -> None:
        """The socket directory, and arenas a killed front-end could not unlink."""
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
        if self._arena_glob is not None:
            directory, pattern = self._arena_glob
            for path in directory.glob(pattern):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    log.info("removed the arena %s", path)


async def _terminate(processes: list[BaseProcess], timeout_s: float) -> None:
    for process in processes:
        if process.is_alive():
            with contextlib.suppress(OSError):
                process.terminate()
    deadline = time.monotonic() + timeout_s
    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for process in processes:
        if process.is_alive():
            log.error(
                "%s (pid %s) did not stop within %.0f s; killing it", process.name, process.pid, timeout_s
            )
            process.kill()
        process.join(5.0)


def _reserve_port(host: str, port: int) -> tuple[socket.socket | None, int]:
    """Port 0: a free port, held (SO_REUSEPORT, not listening) until every front-end has bound it."""
    if port != 0:
        return None, port
    info = socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(info[0], socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(info[4])
    return sock, int(sock.getsockname()[1])


def _worker_base() -> int:
    """Front-end i gets id-generator worker (base + i) mod 1024: distinct within this server."""
    raw = os.environ.get("LINGTING_WORKER_ID")
    return int(raw) if raw else secrets.randbelow(1024)


# -- in the children ---------------------------------------------------------------------------------


def _child_setup(spec: _ChildSpec) -> None:
    from service.cli import configure_logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(spec.settings.log_level, spec.settings.log_format, spec.role)


def _watch_parent(stop: asyncio.Event) -> None:
    """Stop when the supervisor is gone (its sentinel becomes readable), so no child outlives it."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def gone() -> None:
        asyncio.get_running_loop().remove_reader(parent.sentinel)
        log.error("the supervisor process is gone; stopping")
        stop.set()

    asyncio.get_running_loop().add_reader(parent.sentinel, gone)


def _engine_main(spec: _ChildSpec) -> None:
    _child_setup(spec)
    raise SystemExit(asyncio.run(_engine_process(spec)))


async def _engine_process(spec: _ChildSpec) -> int:
    from asr_engine.remote.server import SegmentServer, load_served_engine
    from service.engine_host import engine_tuning

    settings = spec.settings
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    _watch_parent(stop)
    loading = asyncio.ensure_future(
        asyncio.to_thread(
            load_served_engine,
            settings.model_dir,
            device=settings.device,
            dtype=settings.dtype,
            **engine_tuning(settings),
        )
    )
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({loading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not loading.done():
        log.warning("stopped while loading the model")
        os._exit(0)  # the loading thread cannot be interrupted, and nothing is open yet
    stopping.cancel()
    try:
        engine = loading.result()
        await engine.start()
    except Exception as exc:
        log.error("the speech engine failed to load: %s", exc, exc_info=exc)
        return 1
    server = SegmentServer(engine)
    await server.listen(spec.socket_path)
    info = engine.models[0]
    spec.status.send(("ready", f"{info.name} ({info.family}) on {info.device} {info.dtype}"))
    serving_since = time.monotonic()
    await stop.wait()
    # A SIGTERM to the whole process group reaches the front-ends too: let them drain their calls first.
    deadline = time.monotonic() + settings.shutdown_grace_s + 5.0
    while server.connections and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await server.close()
    await engine.close()
    log.info(
        "engine process stopped after %s; batching: %s",
        server.summary(),
        engine.scheduler.stats.summary(time.monotonic() - serving_since),
    )
    return 0


def _frontend_main(spec: _ChildSpec) -> None:
    _child_setup(spec)
    raise SystemExit(asyncio.run(_frontend_process(spec)))


async def _frontend_process(spec: _ChildSpec) -> int:
    from service.db import Database
    from service.engine_host import EngineLike, load_frontend_engine
    from service.server import create_server, engine_host, stop_server

    settings = spec.settings
    stop = asyncio.Event()
    lost = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    _watch_parent(stop)

    def loader() -> EngineLike:
        return load_frontend_engine(
            Path(spec.socket_path),
            Path(spec.arena_path) if spec.arena_path else None,
            spec.arena_bytes,
            name=spec.role,
            vad_model_dir=settings.vad_model_dir,
            punc_model_dir=settings.punc_model_dir,
            torch_threads=spec.torch_threads,
            on_lost=lost.set,
        )

    db = Database(
        settings.resolved_database_url, api_key_pepper=settings.api_key_pepper, worker_id=spec.worker_id
    )
    try:
        server, port = await create_server(settings, db=db, engine_loader=loader, reuse_port=True)
    except Exception:
        db.close()
        raise
    spec.status.send(("bound", port))
    host = engine_host(server)
    waits = {
        "ready": asyncio.ensure_future(host.wait_ready()),
        "stop": asyncio.ensure_future(stop.wait()),
        "lost": asyncio.ensure_future(lost.wait()),
        "failed": asyncio.ensure_future(_failure(host)),
    }
    code = 0
    while True:
        await asyncio.wait(waits.values(), return_when=asyncio.FIRST_COMPLETED)
        if waits["stop"].done():
            break
        if waits["lost"].done():
            log.error("lost the engine process; stopping this front-end")
            code = 1
            break
        if waits["failed"].done():
            code = 1  # EngineHost logged why
            break
        if "ready" in waits and waits["ready"].done():
            spec.status.send(("ready", os.getpid()))
            waits.pop("ready")
    for task in waits.values():
        task.cancel()
    await stop_server(server, settings.shutdown_grace_s if code == 0 else 0)
    db.close()
    return code


async def _failure(host: EngineHost) -> None:
    while host.failure is None:
        await asyncio.sleep(0.2)
