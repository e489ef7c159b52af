"""Per-request overhead of the serving path, on a CPU, with a tiny model whose compute is negligible.

Starts the real server (``bench/server_inproc.py``), drives unary ``Recognize`` on WAV at the given
concurrencies in one client process, and optionally samples the server with py-spy while the last level
runs. Requests per second here = how much Python work one request costs the server's event loop and
device thread, which is what bounds gRPC throughput on a GPU when the model itself is fast.

Server CPU per answered request is reported per process and, inside each process, split into the main
thread (the event loop: gRPC, interceptors, messaging) and the other threads (the device thread, torch's
pool, post-processing and database helpers), from ``/proc/<pid>/task/*/stat``. With ``--frontends N``
the engine process and the front-ends are reported apart: the engine's main thread is what the
segment messaging costs it.

    python -m bench.cpu_profile --model-dir ../shared/parity/paraformer/model --corpus /tmp/pf/corpus \
        --concurrency 1,32 --duration-s 8 [--frontends 2] [--py-spy /tmp/pf/server.svg]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.loadgen import LoadSpec, run_level
from bench.server_inproc import LingtingServer
from bench.sysmon import cpu_seconds

__all__ = ["main", "thread_cpu_seconds"]

log = logging.getLogger(__name__)


def thread_cpu_seconds(pid: int) -> tuple[float, float]:
    """(main thread, all other threads) CPU seconds of a process so far; threads that ended are lost,
    so the rest is the process total minus the main thread."""
    main = cpu_seconds(f"{pid}/task/{pid}")
    return main, cpu_seconds(pid) - main


def _split(
    before: Mapping[str, tuple[float, float]], roles: Mapping[str, int]
) -> dict[str, tuple[float, float]]:
    after = {role: thread_cpu_seconds(pid) for role, pid in roles.items()}
    return {role: (after[role][0] - before[role][0], after[role][1] - before[role][1]) for role in roles}


def _per_request(used: Mapping[str, tuple[float, float]], ok: int) -> dict[str, dict[str, float]]:
    """ms of CPU per answered request, by process: main thread, other threads, total; front-ends summed."""
    out: dict[str, dict[str, float]] = {}
    for role, (main, rest) in used.items():
        key = "frontends" if role.startswith("frontend-") else role
        entry = out.setdefault(key, {"main_thread": 0.0, "other_threads": 0.0, "total": 0.0})
        entry["main_thread"] += main
        entry["other_threads"] += rest
        entry["total"] += main + rest
    return {k: {n: round(v * 1000.0 / max(1, ok), 3) for n, v in e.items()} for k, e in out.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--duration-s", type=float, default=8.0)
    parser.add_argument("--frontends", type=int, default=1, help="gRPC front-end processes (1: one process)")
    parser.add_argument(
        "--channels",
        type=int,
        default=16,
        help="client connections (SO_REUSEPORT spreads them over front-ends)",
    )
    parser.add_argument("--persist", action="store_true")
    parser.add_argument("--py-spy", type=Path, help="record the server during the last level (.svg or .txt)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A time box's SIGTERM must still stop the server (the context manager's exit runs on SystemExit).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(124))
    rows: list[dict[str, Any]] = []
    levels = [int(c) for c in args.concurrency.split(",") if c]
    with LingtingServer(
        model_dir=args.model_dir, device=args.device, dtype=args.dtype, frontends=args.frontends
    ) as server:
        roles = server.processes
        for i, c in enumerate(levels):
            spec = LoadSpec(
                target=server.target,
                api_key=server.api_key,
                corpus=str(args.corpus),
                mode="unary",
                fmt="wav",
                concurrency=c,
                duration_s=args.duration_s,
                persist=args.persist,
                channels=args.channels,
            )
            run_level(LoadSpec(**{**vars(spec), "duration_s": 1.0}), 1, None, None)  # warm-up
            spy = None
            if args.py_spy and i == len(levels) - 1:
                spy = _start_py_spy(roles.get("engine", server.pid), args.py_spy, args.duration_s)
            before = {role: thread_cpu_seconds(pid) for role, pid in roles.items()}
            row = run_level(spec, 1, server.pid, None, server_roles=roles)
            used = _split(before, roles)
            # Server CPU (all processes, all threads) per answered request: what a GIL-bound server pays.
            row["server_cpu_ms_per_request"] = round(
                sum(m + r for m, r in used.values()) * 1000.0 / max(1, row["ok"]), 3
            )
            row["server_cpu_ms_per_request_by_process"] = _per_request(used, row["ok"])
            if spy is not None:
                spy.wait(timeout=args.duration_s + 60)
            row = {k: v for k, v in row.items() if k != "latency_cdf_ms"}
            row["concurrency"] = c
            row["frontends"] = args.frontends
            rows.append(row)
            print(
                f"c={c}: {row['requests_per_s']} req/s, rtfx {row['rtfx']}, "
                f"server cores {row.get('cores_server')}, client cores {row['cores_client']}, "
                f"latency p50 {row['latency_ms'].get('p50')} ms, "
                f"server p50 {row['server_ms'].get('p50')} ms\n"
                f"  server CPU per request: {row['server_cpu_ms_per_request']} ms; by process "
                f"(ms: main thread / other threads / total): "
                + "; ".join(
                    f"{k} {v['main_thread']} / {v['other_threads']} / {v['total']}"
                    for k, v in row["server_cpu_ms_per_request_by_process"].items()
                )
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


def _start_py_spy(pid: int, out: Path, duration_s: float) -> subprocess.Popen[bytes]:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    fmt = "raw" if out.suffix == ".txt" else "flamegraph"
    command = [exe, "record", "--pid", str(pid), "--duration", str(int(duration_s)), "--rate", "200"]
    command += ["--format", fmt, "--output", str(out), "--threads", "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    raise SystemExit(main())
