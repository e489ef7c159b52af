"""Load generator: N concurrent gRPC clients against a running Lingting, on the generated corpus.

Modes:

* ``unary``     ``Recognize`` with the whole file in one message.
* ``stream``    ``StreamingRecognize`` as an upload: config, then the file in 64 KiB chunks as fast as the
                stream takes them, then half-close.
* ``realtime``  ``StreamingRecognize`` paced like a live microphone: 100 ms of audio every 100 ms. Reports
                how long after each segment's end (in speech time) its final result arrived.

Each concurrency level is a closed loop: ``c`` callers, each sending its next request as soon as the
previous one is answered, for ``--duration-s``. ``--half-peak`` then runs an open loop (Poisson arrivals)
at half the best throughput seen, which is where the issue's "p99 at half of peak load" is measured.
Callers are spread over ``--processes`` client processes and ``--channels`` connections each, so the
client is not the bottleneck. CPU use comes from /proc (client processes and the server's pid; with
``--frontends N`` every server process, summed and per role), GPU memory from nvidia-smi polling of the
server's pids.

    python -m bench.loadgen --serve --model-dir /tmp/pl --device cuda --dtype bf16 --corpus /tmp/corpus \
        --mode unary --format wav --concurrency 1,16,64,256 --duration-s 15 --json out/grpc_wav.json
    python -m bench.loadgen --target 127.0.0.1:50051 --api-key KEY --corpus /tmp/corpus ...
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import random
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.corpus import load_manifest
from bench.sysmon import CpuSampler, GpuMemoryPoller, cdf_points, percentiles, write_result

__all__ = ["LoadSpec", "main", "run_level", "summarize"]

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
PACE_S = 0.1
_MAX_MESSAGE = 128 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class LoadSpec:
    """One load level for one client process."""

    target: str
    api_key: str
    corpus: str
    mode: str  # unary | stream | realtime
    fmt: str  # wav | mp3
    concurrency: int  # callers in this process (closed loop)
    duration_s: float
    channels: int = 4
    start_at: float = 0.0  # time.time() at which every process starts sending
    rate_per_s: float = 0.0  # > 0: open loop, Poisson arrivals at this rate (this process's share)
    seed: int = 0
    persist: bool = False
    itn: bool = True
    punctuation: bool = True
    max_files: int = 0
    timeout_s: float = 300.0
    utt_min_s: float = 0.0  # only utterances this long or longer
    utt_max_s: float = 1e9
    max_requests: int = 0  # > 0: stop after this many requests (closed loop), whatever the duration


def _payloads(spec: LoadSpec) -> list[tuple[bytes, float]]:
    corpus = Path(spec.corpus)
    items = [
        i
        for i in load_manifest(corpus)
        if i.kind == "utt" and spec.fmt in i.files and spec.utt_min_s <= i.duration_s <= spec.utt_max_s
    ]
    if spec.max_files:
        items = items[: spec.max_files]
    if not items:
        raise FileNotFoundError(f"no {spec.fmt} utterances in {corpus}")
    return [((corpus / i.files[spec.fmt]).read_bytes(), i.duration_s) for i in items]


class _Client:
    """Stubs over several channels; one request at a time per caller."""

    def __init__(self, spec: LoadSpec) -> None:
        import grpc

        from lingting.asr.v1 import recognition_pb2, recognition_service_pb2, recognition_service_pb2_grpc

        self.spec = spec
        self.grpc = grpc
        self.pb = recognition_pb2
        self.spb = recognition_service_pb2
        options = [
            ("grpc.max_send_message_length", _MAX_MESSAGE),
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.use_local_subchannel_pool", 1),  # one TCP connection per channel
        ]
        self.channels = [
            grpc.aio.insecure_channel(spec.target, options=options) for _ in range(spec.channels)
        ]
        self.stubs = [recognition_service_pb2_grpc.RecognitionServiceStub(c) for c in self.channels]
        self.metadata = (("authorization", f"Bearer {spec.api_key}"),)
        encoding = {"wav": recognition_pb2.ENCODING_WAV, "mp3": recognition_pb2.ENCODING_MP3}[spec.fmt]
        self.config = recognition_pb2.RecognitionConfig(
            encoding=encoding, enable_itn=spec.itn, enable_punctuation=spec.punctuation
        )

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()

    async def one(self, index: int, audio: bytes, seconds: float) -> dict[str, Any]:
        stub = self.stubs[index % len(self.stubs)]
        started = time.perf_counter()
        record: dict[str, Any] = {"t": time.time(), "audio_s": seconds, "status": "OK"}
        try:
            if self.spec.mode == "unary":
                reply = await stub.Recognize(
                    self.spb.RecognizeRequest(config=self.config, content=audio, persist=self.spec.persist),
                    metadata=self.metadata,
                    timeout=self.spec.timeout_s,
                )
                record["server_ms"] = float(reply.metadata.processing_time_ms)
            else:
                record.update(await self._stream(stub, audio, seconds))
        except self.grpc.aio.AioRpcError as exc:
            record["status"] = exc.code().name
            record["detail"] = (exc.details() or "")[:200]
        record["latency_ms"] = (time.perf_counter() - started) * 1000.0
        return record

    async def _stream(self, stub: Any, audio: bytes, seconds: float) -> dict[str, Any]:
        spb = self.spb
        realtime = self.spec.mode == "realtime"
        first = spb.StreamingRecognizeRequest(
            streaming_config=spb.StreamingRecognitionConfig(
                config=self.config, persist=self.spec.persist, interim_results=realtime
            )
        )
        # Real-time pacing: bytes in proportion to audio time (exact for PCM, close for constant-rate MP3).
        step = max(1, int(len(audio) * PACE_S / max(seconds, PACE_S))) if realtime else CHUNK_BYTES
        marks: dict[str, float] = {}

        async def requests() -> Any:
            yield first
            marks["start"] = time.perf_counter()
            for offset in range(0, len(audio), step):
                if realtime:
                    due = marks["start"] + (offset / step) * PACE_S
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                yield spb.StreamingRecognizeRequest(audio_content=audio[offset : offset + step])
            marks["sent"] = time.perf_counter()

        final_lags: list[float] = []
        interims = 0
        server_ms = float("nan")
        async for reply in stub.StreamingRecognize(
            requests(), metadata=self.metadata, timeout=self.spec.timeout_s
        ):
            now = time.perf_counter()
            for result in reply.results:
                if result.is_final and realtime and "start" in marks:
                    spoken_end = marks["start"] + result.segment.end_offset_ms / 1000.0
                    final_lags.append((now - spoken_end) * 1000.0)
                elif not result.is_final:
                    interims += 1
            if reply.HasField("metadata") and reply.metadata.processing_time_ms:
                server_ms = float(reply.metadata.processing_time_ms)
        done = time.perf_counter()
        out: dict[str, Any] = {"server_ms": server_ms, "interims": interims}
        if "sent" in marks:
            out["after_close_ms"] = (done - marks["sent"]) * 1000.0
        if final_lags:
            out["final_lag_ms"] = final_lags
        return out


async def _run_spec(spec: LoadSpec) -> list[dict[str, Any]]:
    payloads = _payloads(spec)
    client = _Client(spec)
    rng = random.Random(spec.seed)
    order = list(range(len(payloads)))
    rng.shuffle(order)
    records: list[dict[str, Any]] = []
    try:
        delay = spec.start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        deadline = time.perf_counter() + spec.duration_s
        counter = iter(range(1 << 62))

        async def send(index: int) -> None:
            audio, seconds = payloads[order[index % len(order)]]
            records.append(await client.one(index, audio, seconds))

        if spec.rate_per_s > 0:
            tasks = []
            next_at = time.perf_counter()
            while next_at < deadline:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                tasks.append(asyncio.ensure_future(send(next(counter))))
                next_at += rng.expovariate(spec.rate_per_s)
            await asyncio.gather(*tasks)
        else:

            async def caller() -> None:
                while (spec.max_requests and len(records) < spec.max_requests) or (
                    not spec.max_requests and time.perf_counter() < deadline
                ):
                    await send(next(counter))

            await asyncio.gather(*(caller() for _ in range(spec.concurrency)))
    finally:
        await client.close()
    return records


def _run_process(spec: LoadSpec) -> tuple[list[dict[str, Any]], float]:
    """Entry point of one client process: its records and its own CPU seconds."""
    from bench.sysmon import cpu_seconds

    before = cpu_seconds()
    records = asyncio.run(_run_spec(spec))
    return records, cpu_seconds() - before


def summarize(records: Sequence[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """Throughput and latency of one level: only answered requests count as audio done."""
    ok = [r for r in records if r["status"] == "OK"]
    audio = sum(r["audio_s"] for r in ok)
    errors: dict[str, int] = {}
    for r in records:
        if r["status"] != "OK":
            errors[r["status"]] = errors.get(r["status"], 0) + 1
    row: dict[str, Any] = {
        "requests": len(records),
        "ok": len(ok),
        "errors": errors,
        "audio_s": round(audio, 2),
        "wall_s": round(wall_s, 3),
        "rtfx": round(audio / wall_s, 1) if wall_s > 0 else 0.0,
        "requests_per_s": round(len(ok) / wall_s, 1) if wall_s > 0 else 0.0,
        "latency_ms": percentiles(r["latency_ms"] for r in ok),
        "latency_cdf_ms": cdf_points(r["latency_ms"] for r in ok),
        "server_ms": percentiles(r["server_ms"] for r in ok if r.get("server_ms") == r.get("server_ms")),
    }
    lags = [lag for r in ok for lag in r.get("final_lag_ms", [])]
    if lags:
        row["final_lag_ms"] = percentiles(lags)
    after_close = [r["after_close_ms"] for r in ok if "after_close_ms" in r]
    if after_close:
        row["after_close_ms"] = percentiles(after_close)
    return row


def run_level(
    base: LoadSpec,
    processes: int,
    server_pid: int | None,
    pool: ProcessPoolExecutor | None,
    *,
    server_roles: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """One load level spread over client processes, with CPU and GPU-memory sampling around it.

    ``server_roles`` (role -> pid) are the processes of a multi-process server: their CPU is reported
    per role and summed into ``cores_server``.
    """
    start_at = time.time() + 1.0
    shares = [
        base.concurrency // processes + (1 if i < base.concurrency % processes else 0)
        for i in range(processes)
    ]
    specs = [
        LoadSpec(
            **{
                **vars(base),
                "concurrency": share,
                "start_at": start_at,
                "seed": base.seed + i,
                "rate_per_s": base.rate_per_s / processes,
            }
        )
        for i, share in enumerate(shares)
        if share > 0 or base.rate_per_s > 0
    ]
    roles = dict(server_roles or ({"server": server_pid} if server_pid else {}))
    cpu = CpuSampler(list(roles.values()))
    with GpuMemoryPoller(pids=list(roles.values())) as gpu:
        time.sleep(max(0.0, start_at - time.time()))
        cpu.start()
        t0 = time.perf_counter()
        results = [_run_process(s) for s in specs] if pool is None else list(pool.map(_run_process, specs))
        wall = time.perf_counter() - t0
        server_cpu = cpu.stop()
    records = [r for recs, _ in results for r in recs]
    client_cpu = sum(c for _, c in results)
    # Requests still in flight at the deadline finish and count; the wall time includes their tail.
    row = summarize(records, wall)
    row.update(
        {
            "cores_client": round(client_cpu / wall, 2),
            **gpu.result(),
        }
    )
    if roles:
        by_role = {role: server_cpu.get(f"cores_pid{pid}", float("nan")) for role, pid in roles.items()}
        row["cores_server"] = round(sum(by_role.values()), 2)
        if len(roles) > 1:
            row["cores_by_process"] = by_role
    return row


def _ints(text: str) -> list[int]:
    return [int(p) for p in text.split(",") if p]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="gRPC load generator for Lingting.")
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--server-pid", type=int, help="for CPU and GPU-memory sampling of a running server")
    parser.add_argument("--serve", action="store_true", help="start the server here (bench/server_inproc.py)")
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--vad-model-dir", type=Path)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype")
    parser.add_argument(
        "--frontends", type=int, default=1, help="with --serve: gRPC front-end processes (1: one process)"
    )
    parser.add_argument(
        "--server-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra server setting for --serve, as name=value or LINGTING_NAME=value (repeatable)",
    )
    parser.add_argument("--server-log", type=Path)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--mode", default="unary", help="unary | stream | realtime (comma list)")
    parser.add_argument("--format", default="wav", help="wav | mp3 (comma list)")
    parser.add_argument("--concurrency", default="1,4,16,64,256")
    parser.add_argument("--stream-concurrency", help="levels for --mode stream (default: --concurrency)")
    parser.add_argument("--realtime-concurrency", help="levels for --mode realtime (default: --concurrency)")
    parser.add_argument("--duration-s", type=float, default=15.0)
    parser.add_argument("--warmup-s", type=float, default=3.0)
    parser.add_argument(
        "--processes", type=int, default=0, help="client processes (0: 1 per 32 callers, max 4)"
    )
    parser.add_argument("--channels", type=int, default=4, help="gRPC connections per client process")
    parser.add_argument("--half-peak", action="store_true", help="then an open loop at half the best RTFx")
    parser.add_argument(
        "--idle-requests",
        type=int,
        default=0,
        help="first, this many sequential requests of 5-10 s files on the idle server",
    )
    parser.add_argument("--persist", action="store_true", help="store each recognition (default: not)")
    parser.add_argument("--no-itn", action="store_true")
    parser.add_argument("--no-punctuation", action="store_true")
    parser.add_argument("--max-files", type=int, default=0)
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def _sweep(
    args: argparse.Namespace,
    target: str,
    api_key: str,
    server_pid: int | None,
    save: Callable[[list[dict[str, Any]]], object] = lambda rows: None,
    roles: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Every mode x format x level; ``save`` gets the rows so far after each (a cut-off run keeps them)."""
    rows: list[dict[str, Any]] = []

    def add(row: dict[str, Any]) -> None:
        rows.append(row)
        save(rows)

    per_mode = {
        mode: _ints(getattr(args, f"{mode}_concurrency", None) or args.concurrency)
        for mode in ("unary", "stream", "realtime")
    }
    max_procs = args.processes or min(4, max(1, max(max(v) for v in per_mode.values()) // 32))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_procs, mp_context=context) as pool:
        for mode in args.mode.split(","):
            levels = per_mode[mode]
            for fmt in args.format.split(","):
                base = LoadSpec(
                    target=target,
                    api_key=api_key,
                    corpus=str(args.corpus),
                    mode=mode,
                    fmt=fmt,
                    concurrency=1,
                    duration_s=args.duration_s,
                    channels=args.channels,
                    persist=args.persist,
                    itn=not args.no_itn,
                    punctuation=not args.no_punctuation,
                    max_files=args.max_files,
                )
                warm = LoadSpec(
                    **{**vars(base), "concurrency": min(32, max(levels)), "duration_s": args.warmup_s}
                )
                if mode != "realtime":  # a paced stream lasts its audio's length; the server is warm by then
                    run_level(warm, 1, None, None)
                if args.idle_requests and mode == "unary":
                    add(_idle(base, args.idle_requests, server_pid, roles))
                level_rows = []
                for concurrency in levels:
                    procs = args.processes or min(max_procs, max(1, concurrency // 32))
                    spec = LoadSpec(**{**vars(base), "concurrency": concurrency})
                    row = run_level(spec, procs, server_pid, pool if procs > 1 else None, server_roles=roles)
                    row.update(
                        setting=f"grpc {mode} {fmt} c={concurrency}",
                        mode=mode,
                        format=fmt,
                        concurrency=concurrency,
                        client_processes=procs,
                    )
                    level_rows.append(row)
                    add(row)
                    log.info(
                        "%s: %.0fx realtime, p50 %s ms, p99 %s ms, errors %s",
                        row["setting"],
                        row["rtfx"],
                        row["latency_ms"].get("p50"),
                        row["latency_ms"].get("p99"),
                        row["errors"],
                    )
                if args.half_peak and mode == "unary" and level_rows:
                    add(_half_peak(args, base, level_rows, server_pid, pool, max_procs, roles))
    return rows


def _idle(
    base: LoadSpec, requests: int, server_pid: int | None, roles: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """One 5-10 s file at a time on an otherwise idle server: the single-request latency target."""
    spec = LoadSpec(
        **{**vars(base), "concurrency": 1, "utt_min_s": 5.0, "utt_max_s": 10.0, "max_requests": requests}
    )
    row = run_level(spec, 1, server_pid, None, server_roles=roles)
    row.update(
        setting=f"grpc {base.mode} {base.fmt} idle, one 5-10 s file at a time",
        mode=base.mode,
        format=base.fmt,
        concurrency=1,
        idle=True,
    )
    log.info(
        "idle latency: server p50 %s ms p99 %s ms; client p50 %s ms",
        row["server_ms"].get("p50"),
        row["server_ms"].get("p99"),
        row["latency_ms"].get("p50"),
    )
    return row


def _half_peak(
    args: argparse.Namespace,
    base: LoadSpec,
    level_rows: list[dict[str, Any]],
    server_pid: int | None,
    pool: ProcessPoolExecutor,
    max_procs: int,
    roles: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    best = max(level_rows, key=lambda r: r["rtfx"])
    mean_audio = best["audio_s"] / max(1, best["ok"])
    rate = 0.5 * best["rtfx"] / max(mean_audio, 1e-6)
    spec = LoadSpec(**{**vars(base), "rate_per_s": rate, "concurrency": 0})
    row = run_level(spec, max_procs, server_pid, pool if max_procs > 1 else None, server_roles=roles)
    row.update(
        setting=f"grpc {base.mode} {base.fmt} open loop at half peak",
        mode=base.mode,
        format=base.fmt,
        offered_rtfx=round(0.5 * best["rtfx"], 1),
        offered_requests_per_s=round(rate, 1),
        open_loop=True,
    )
    log.info(
        "half peak (%.0fx offered): %.0fx served, p99 %s ms",
        row["offered_rtfx"],
        row["rtfx"],
        row["latency_ms"].get("p99"),
    )
    return row


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    # A time box's SIGTERM must still stop a server started here (its context manager exits on SystemExit).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(124))
    extra: dict[str, Any] = {}

    def save(rows: list[dict[str, Any]]) -> object:
        return write_result(args.json, "grpc", rows, partial=True, **extra)

    if args.serve:
        from bench.server_inproc import LingtingServer

        settings = dict(s.split("=", 1) for s in args.server_setting)
        with LingtingServer(
            model_dir=args.model_dir,
            device=args.device,
            dtype=args.dtype,
            vad_model_dir=args.vad_model_dir,
            settings=settings,
            log_path=args.server_log,
            frontends=args.frontends,
        ) as server:
            extra["server"] = {
                "startup_s": round(server.startup_s, 2),
                "model_dir": str(args.model_dir),
                "device": args.device,
                "dtype": args.dtype,
                "settings": settings,
                "frontends": args.frontends,
                "processes": server.processes,
            }
            rows = _sweep(args, server.target, server.api_key, server.pid, save, server.processes)
    else:
        rows = _sweep(args, args.target, args.api_key, args.server_pid, save)
    doc = write_result(args.json, "grpc", rows, **extra)
    for row in doc["rows"]:
        print(
            {
                k: row.get(k)
                for k in (
                    "setting",
                    "rtfx",
                    "latency_ms",
                    "server_ms",
                    "errors",
                    "cores_server",
                    "cores_by_process",
                    "gpu_mem_peak_process_mib",
                )
            }
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
