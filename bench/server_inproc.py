"""Start the real Lingting server for a benchmark, wait until it serves, hand out an API key, stop it.

The server runs as ``python -m service.cli serve`` in its own process (so the load generator's CPU use and
the server's are measured apart), configured only through ``LINGTING_*`` variables, with a fresh SQLite
database under a temporary folder. Health is the standard ``grpc.health.v1`` check, which answers
NOT_SERVING until the model is loaded and warmed. A tenant and an API key are created through
``TenantService`` with a random admin token. ``frontends`` > 1 starts the multi-process server (one
engine process, N gRPC front-ends); ``processes`` then maps each role to its pid, read from the
server's log, so CPU can be measured per process.

    with LingtingServer(model_dir=..., device="cuda", dtype="bf16", frontends=4) as server:
        server.target, server.api_key, server.pid, server.processes
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["LingtingServer", "create_api_key", "free_port", "wait_serving"]

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_serving(target: str, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> float:
    """Poll grpc.health.v1 until SERVING; returns the seconds it took. Raises if the process dies."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    started = time.perf_counter()
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"server exited with code {process.returncode} before serving")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return time.perf_counter() - started
            except grpc.RpcError:
                pass
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(f"{target} not SERVING after {timeout_s:.0f} s")
            time.sleep(0.25)


def create_api_key(target: str, admin_token: str, name: str = "bench") -> str:
    """A new tenant and a key for it, through the admin-only TenantService; returns the key's secret."""
    import grpc

    from lingting.asr.v1 import tenant_pb2, tenant_service_pb2, tenant_service_pb2_grpc

    metadata = (("authorization", f"Bearer {admin_token}"),)
    with grpc.insecure_channel(target) as channel:
        stub = tenant_service_pb2_grpc.TenantServiceStub(channel)
        tenant = stub.CreateTenant(
            tenant_service_pb2.CreateTenantRequest(tenant=tenant_pb2.Tenant(display_name=name)),
            metadata=metadata,
            timeout=30,
        ).tenant
        reply = stub.CreateApiKey(
            tenant_service_pb2.CreateApiKeyRequest(
                parent=tenant.name, api_key=tenant_pb2.ApiKey(display_name=name)
            ),
            metadata=metadata,
            timeout=30,
        )
    return str(reply.secret)


class LingtingServer:
    """A Lingting server process on 127.0.0.1 with a given model, device and dtype."""

    def __init__(
        self,
        *,
        model_dir: Path | None,
        device: str = "auto",
        dtype: str | None = None,
        vad_model_dir: Path | None = None,
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        start_timeout_s: float = 600.0,
        python: str = sys.executable,
        frontends: int = 1,
    ) -> None:
        self.port = port or free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.api_key = ""
        self.pid = 0
        self.processes: dict[str, int] = {}  # role -> pid: "server", or "supervisor", "engine", "frontend-N"
        self.startup_s = 0.0
        self._admin = secrets.token_urlsafe(24)
        self._tmp = tempfile.TemporaryDirectory(prefix="lingting-bench-")
        self._log_path = log_path or Path(self._tmp.name) / "server.log"
        self._timeout = start_timeout_s
        self._python = python
        self._process: subprocess.Popen[bytes] | None = None
        env = dict(os.environ)
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "data_dir": self._tmp.name,
            "admin_token": self._admin,
            "device": device,
            "log_level": "WARNING",
            "max_in_flight": 100000,
            "frontend_processes": frontends,
        }
        if model_dir is not None:
            values["model_dir"] = str(model_dir)
        if dtype:
            values["dtype"] = dtype
        if vad_model_dir is not None:
            values["vad_model_dir"] = str(vad_model_dir)
        # "device_workers=2" and "LINGTING_DEVICE_WORKERS=2" name the same setting (the latter used to
        # become LINGTING_LINGTING_DEVICE_WORKERS, which the server ignores).
        values.update({_setting_name(name): value for name, value in (settings or {}).items()})
        env.update({f"LINGTING_{name.upper()}": str(value) for name, value in values.items()})
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        self._env = env

    def start(self) -> LingtingServer:
        migrate = subprocess.run(
            [self._python, "-m", "service.cli", "migrate"],
            env=self._env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if migrate.returncode != 0:
            log.warning("lingting migrate exited %d: %s", migrate.returncode, migrate.stderr[-2000:])
        log_file = self._log_path.open("wb")
        self._process = subprocess.Popen(
            [self._python, "-m", "service.cli", "serve"],
            env=self._env,
            cwd=REPO_ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=False,
        )
        self.pid = self._process.pid
        try:
            self.startup_s = wait_serving(self.target, self._timeout, self._process)
            self.processes = self._roles()
            self.api_key = create_api_key(self.target, self._admin)
        except BaseException:
            self.stop()
            log.error("server log:\n%s", self.log_tail())
            raise
        log.info("lingting serving on %s (pid %d) after %.1f s", self.target, self.pid, self.startup_s)
        return self

    def _roles(self) -> dict[str, int]:
        """The server's processes by role; a multi-process server logs them when it starts them."""
        found = re.search(
            r"supervisor pid=(\d+) engine pid=(\d+) frontends pids=([\d,]+)", self.log_tail(1 << 20)
        )
        if found is None:
            return {"server": self.pid}
        roles = {"supervisor": int(found.group(1)), "engine": int(found.group(2))}
        roles.update({f"frontend-{i}": int(p) for i, p in enumerate(found.group(3).split(","))})
        return roles

    def log_tail(self, chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self._log_path.read_text(errors="replace")[-chars:]
        return ""

    def stop(self, grace_s: float = 15.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self._tmp.cleanup()

    def __enter__(self) -> LingtingServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _setting_name(name: str) -> str:
    """A setting's file name from either spelling: ``max_batch_s`` or ``LINGTING_MAX_BATCH_S``."""
    lowered = name.strip().lower()
    return lowered.removeprefix("lingting_")
