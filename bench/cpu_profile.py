"""Per-request overhead of the serving path, on a CPU, with a tiny model whose compute is negligible.

Starts the real server (``bench/server_inproc.py``), drives unary ``Recognize`` on WAV at the given
concurrencies in one client process, and optionally samples the server with py-spy while the last level
runs. Requests per second here = how much Python work one request costs the server's event loop and
device thread, which is what bounds gRPC throughput on a GPU when the model itself is fast.

    python -m bench.cpu_profile --model-dir ../shared/parity/paraformer/model --corpus /tmp/pf/corpus \
        --concurrency 1,32 --duration-s 8 --py-spy /tmp/pf/server.svg
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.loadgen import LoadSpec, run_level
from bench.server_inproc import LingtingServer

__all__ = ["main"]

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--duration-s", type=float, default=8.0)
    parser.add_argument("--persist", action="store_true")
    parser.add_argument("--py-spy", type=Path, help="record the server during the last level (.svg or .txt)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A time box's SIGTERM must still stop the server (the context manager's exit runs on SystemExit).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(124))
    rows: list[dict[str, Any]] = []
    levels = [int(c) for c in args.concurrency.split(",") if c]
    with LingtingServer(model_dir=args.model_dir, device=args.device, dtype=args.dtype) as server:
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
            )
            run_level(LoadSpec(**{**vars(spec), "duration_s": 1.0}), 1, None, None)  # warm-up
            spy = None
            if args.py_spy and i == len(levels) - 1:
                spy = _start_py_spy(server.pid, args.py_spy, args.duration_s)
            row = run_level(spec, 1, server.pid, None)
            # Server CPU (all threads) per answered request: the cost a GIL-bound server pays per call.
            row["server_cpu_ms_per_request"] = round(
                row.get("cores_server", 0.0) * row["wall_s"] * 1000.0 / max(1, row["ok"]), 2
            )
            if spy is not None:
                spy.wait(timeout=args.duration_s + 60)
            row = {k: v for k, v in row.items() if k != "latency_cdf_ms"}
            row["concurrency"] = c
            rows.append(row)
            print(
                f"c={c}: {row['requests_per_s']} req/s, rtfx {row['rtfx']}, "
                f"server cores {row.get('cores_server')}, client cores {row['cores_client']}, "
                f"latency p50 {row['latency_ms'].get('p50')} ms, "
                f"server p50 {row['server_ms'].get('p50')} ms\n"
                f"  server CPU per request: {row['server_cpu_ms_per_request']} ms"
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
