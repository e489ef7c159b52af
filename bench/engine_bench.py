"""Engine-only benchmarks (no gRPC): where the time goes between the model and the serving path.

Modes (comma-separated in ``--modes``):

* ``model``   features + ``model.decode_batch`` on pre-batched, length-sorted utterances at fixed batch sizes:
              the ceiling the serving path is measured against (features and model timed separately).
* ``engine``  ``await engine.transcribe(bytes)`` from N concurrent callers (decode, batcher, post-processing).
* ``latency`` one 5-10 s utterance at a time on an idle engine.
* ``memory``  a long recording (2 hours by default, generated in memory) transcribed again and again for
              ``--memory-duration-s``; peak memory per pass must not grow and nothing may run out of memory.
* ``profile`` torch.profiler over a few engine batches; prints the top operators (run it last: a process
              that has profiled CUDA runs slower afterwards).

    python -m bench.engine_bench --model-dir /tmp/pl --corpus /tmp/corpus --device cuda --dtype bf16 \
        --modes model,engine,latency --concurrency 1,16,64,256 --json out/engine.json

``--device-workers N`` runs the engine with N device workers (``EngineConfig.device_workers``); the engine
rows then say how many batches each worker ran (``worker_batches``), and ``gpu_busy_share`` sums the workers'
busy time, so it may pass 1.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.corpus import CorpusItem, load_manifest, long_recording, read_wav, wav_bytes
from bench.sysmon import GpuMemoryPoller, cdf_points, percentiles, write_result

__all__ = ["bench_engine", "bench_latency", "bench_memory", "bench_model", "load_engine", "main"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000


def load_engine(args: argparse.Namespace) -> Any:
    """The real engine, configured from the command line."""
    from asr_engine.engine import Engine, EngineConfig
    from asr_engine.scheduler import SchedulerConfig

    defaults = SchedulerConfig()
    scheduler = SchedulerConfig(
        max_batch_samples=int(args.max_batch_s * SAMPLE_RATE)
        if args.max_batch_s
        else defaults.max_batch_samples,
        max_batch_items=args.max_batch_items or defaults.max_batch_items,
        max_wait_ms=args.max_wait_ms if args.max_wait_ms is not None else defaults.max_wait_ms,
        max_queued_samples=defaults.max_queued_samples,
    )
    config = EngineConfig(scheduler=scheduler, vad=args.vad, device_workers=args.device_workers)
    return Engine.load(
        args.model_dir,
        device=args.device,
        dtype=args.dtype,
        vad_model_dir=args.vad_model_dir if args.vad == "fsmn" else None,
        config=config,
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _utterances(corpus: Path, limit: int | None = None) -> list[tuple[CorpusItem, np.ndarray]]:
    items = [item for item in load_manifest(corpus) if item.kind == "utt" and "wav" in item.files]
    items = items[:limit] if limit else items
    return [(item, read_wav(corpus / item.files["wav"])[0]) for item in items]


def _options(args: argparse.Namespace) -> Any:
    from asr_engine.types import TranscribeOptions

    return TranscribeOptions(itn=not args.no_itn, punctuation=not args.no_punctuation)


# --------------------------------------------------------------------------------------------- model
def bench_model(
    engine: Any, corpus: Path, batch_sizes: Sequence[int], min_time_s: float
) -> list[dict[str, Any]]:
    """Features and decode_batch on pre-cut, length-sorted batches of fixed size."""
    from asr_engine.features import Frontend
    from asr_engine.models.base import DecodeRequest

    model, device = engine._model, engine.device
    frontend = Frontend(model.frontend, device)
    dtype = engine._dtype
    utts = sorted(_utterances(corpus), key=lambda pair: pair[1].size)
    waves_all = [torch.from_numpy(samples).to(device) for _, samples in utts]
    rows = []
    for batch_size in batch_sizes:
        batches = [waves_all[i : i + batch_size] for i in range(0, len(waves_all), batch_size)]
        with torch.inference_mode():  # warm-up: every shape once
            for batch in batches[:2]:
                feats, lengths = frontend(batch)
                model.decode_batch(feats.to(dtype), lengths, [DecodeRequest()] * len(batch))
        feat_s = model_s = audio_s = 0.0
        passes = 0
        started = time.perf_counter()
        while passes == 0 or time.perf_counter() - started < min_time_s:
            for batch in batches:
                with torch.inference_mode():
                    t0 = time.perf_counter()
                    feats, lengths = frontend(batch)
                    feats = feats.to(dtype)
                    _sync(device)
                    t1 = time.perf_counter()
                    model.decode_batch(feats, lengths, [DecodeRequest()] * len(batch))
                    _sync(device)
                    t2 = time.perf_counter()
                feat_s += t1 - t0
                model_s += t2 - t1
                audio_s += sum(w.numel() for w in batch) / SAMPLE_RATE
            passes += 1
        rows.append(
            {
                "setting": f"model batch={batch_size}",
                "batch_size": batch_size,
                "audio_s": round(audio_s, 2),
                "wall_s": round(feat_s + model_s, 4),
                "rtfx": round(audio_s / (feat_s + model_s), 1),
                "rtfx_features": round(audio_s / feat_s, 1),
                "rtfx_model": round(audio_s / model_s, 1),
                "features_share": round(feat_s / (feat_s + model_s), 3),
                "passes": passes,
            }
        )
        log.info("model batch=%d: %s", batch_size, rows[-1])
    return rows


# -------------------------------------------------------------------------------------------- engine
async def _drive(
    engine: Any,
    payloads: Sequence[tuple[bytes | np.ndarray, float]],
    concurrency: int,
    duration_s: float,
    options: Any,
    min_requests: int = 0,
) -> tuple[list[dict[str, float]], float]:
    """``concurrency`` callers loop over ``payloads`` for ``duration_s``; returns per-request records."""
    records: list[dict[str, float]] = []
    counter = iter(range(1 << 62))
    started = time.perf_counter()
    deadline = started + duration_s

    async def caller() -> None:
        while time.perf_counter() < deadline or len(records) < min_requests:
            index = next(counter)
            audio, seconds = payloads[index % len(payloads)]
            t0 = time.perf_counter()
            transcript = await engine.transcribe(audio, options)
            records.append(
                {
                    "audio_s": seconds,
                    "latency_ms": (time.perf_counter() - t0) * 1000.0,
                    "server_ms": float(transcript.processing_ms),
                }
            )

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return records, time.perf_counter() - started


def _payloads(corpus: Path, fmt: str) -> list[tuple[bytes | np.ndarray, float]]:
    items = [item for item in load_manifest(corpus) if item.kind == "utt"]
    out: list[tuple[bytes | np.ndarray, float]] = []
    for item in items:
        if fmt == "samples":
            out.append((read_wav(corpus / item.files["wav"])[0], item.duration_s))
        elif fmt in item.files:
            out.append(((corpus / item.files[fmt]).read_bytes(), item.duration_s))
    if not out:
        raise FileNotFoundError(f"no {fmt} utterances in {corpus}")
    return out


async def bench_engine(
    engine: Any, corpus: Path, concurrencies: Sequence[int], duration_s: float, fmt: str, options: Any
) -> list[dict[str, Any]]:
    payloads = _payloads(corpus, fmt)
    stats = engine.scheduler.stats
    await _drive(engine, payloads, min(32, max(concurrencies)), 0.0, options, min_requests=32)  # warm-up
    rows = []
    for concurrency in concurrencies:
        before = {k: v for k, v in vars(stats).items() if k != "worker_batches"}
        worker_before = list(stats.worker_batches)
        with GpuMemoryPoller() as gpu:
            records, wall = await _drive(
                engine, payloads, concurrency, duration_s, options, min_requests=concurrency
            )
        after = vars(stats)
        delta = {key: after[key] - before[key] for key in before}
        audio = sum(r["audio_s"] for r in records)
        rows.append(
            {
                "setting": f"engine {fmt} c={concurrency}"
                + (f" workers={engine.config.device_workers}" if engine.config.device_workers > 1 else ""),
                "concurrency": concurrency,
                "device_workers": engine.config.device_workers,
                "worker_batches": [a - b for a, b in zip(stats.worker_batches, worker_before, strict=True)],
                "format": fmt,
                "requests": len(records),
                "audio_s": round(audio, 2),
                "wall_s": round(wall, 3),
                "rtfx": round(audio / wall, 1),
                "latency_ms": percentiles(r["latency_ms"] for r in records),
                "latency_cdf_ms": cdf_points(r["latency_ms"] for r in records),
                "server_ms": percentiles(r["server_ms"] for r in records),
                "gpu_busy_share": round(delta["busy_s"] / wall, 3),  # summed over workers: may pass 1
                "batches": delta["batches"],
                "mean_batch_items": round(delta["items"] / max(1, delta["batches"]), 1),
                "padding_efficiency": round(delta["real_samples"] / max(1, delta["padded_samples"]), 3),
                **_torch_memory(engine.device),
                **gpu.result(),
            }
        )
        log.info(
            "engine c=%d: %.0fx realtime, p50 %.1f ms",
            concurrency,
            rows[-1]["rtfx"],
            rows[-1]["latency_ms"].get("p50", 0.0),
        )
    return rows


def _torch_memory(device: torch.device) -> dict[str, float]:
    if device.type != "cuda":
        return {"rss_mib": _rss_mib()}
    return {
        "torch_max_allocated_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
        "torch_reserved_mib": round(torch.cuda.memory_reserved(device) / 2**20, 1),
        "rss_mib": _rss_mib(),
    }


def _rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    return float("nan")


# ------------------------------------------------------------------------------------------- latency
async def bench_latency(engine: Any, corpus: Path, repeats: int, options: Any) -> list[dict[str, Any]]:
    """One 5-10 s utterance at a time, on an idle engine (the issue's single-request latency)."""
    utts = [(item, samples) for item, samples in _utterances(corpus) if 5.0 <= item.duration_s <= 10.0]
    if not utts:
        utts = [
            (item, samples[: 7 * SAMPLE_RATE + SAMPLE_RATE // 2]) for item, samples in _utterances(corpus, 1)
        ]
    payloads = [(wav_bytes(samples), samples.size / SAMPLE_RATE) for _, samples in utts]
    rows: list[dict[str, Any]] = []
    for label, chosen in (("one file", payloads[:1]), ("5-10 s files", payloads)):
        await _drive(engine, chosen, 1, 0.0, options, min_requests=5)
        records, wall = await _drive(engine, chosen, 1, 0.0, options, min_requests=repeats)
        rows.append(
            {
                "setting": f"idle latency, {label}",
                "concurrency": 1,
                "requests": len(records),
                "audio_s_mean": round(float(np.mean([r["audio_s"] for r in records])), 2),
                "latency_ms": percentiles(r["latency_ms"] for r in records),
                "server_ms": percentiles(r["server_ms"] for r in records),
                "wall_s": round(wall, 3),
            }
        )
        log.info(
            "latency %s: server p50 %.1f ms p99 %.1f ms",
            label,
            rows[-1]["server_ms"]["p50"],
            rows[-1]["server_ms"]["p99"],
        )
    return rows


# -------------------------------------------------------------------------------------------- memory
async def bench_memory(
    engine: Any, source: Path, hours: float, duration_s: float, options: Any, as_wav: bool
) -> list[dict[str, Any]]:
    """Transcribe one long recording repeatedly; peak memory per pass must stay flat."""
    from dataclasses import replace

    samples = long_recording(source, hours * 3600.0)
    audio: bytes | np.ndarray = wav_bytes(samples) if as_wav else samples
    options = replace(options, vad=True)
    device = engine.device
    passes: list[dict[str, Any]] = []
    error = ""
    started = time.perf_counter()
    while len(passes) < 3 or time.perf_counter() - started < duration_s:  # growth: compare passes 2+
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        try:
            with GpuMemoryPoller(pids=[_own_pid()]) as gpu:
                transcript = await engine.transcribe(audio, options)
        except Exception as exc:  # an OOM (or any failure) is the finding, not a crash of the benchmark
            error = f"{type(exc).__name__}: {exc}"
            log.exception("memory pass %d failed", len(passes))
            break
        wall = time.perf_counter() - t0
        gc.collect()
        passes.append(
            {
                "pass": len(passes),
                "wall_s": round(wall, 2),
                "rtfx": round(samples.size / 16000 / wall, 1),
                "segments": len(transcript.segments),
                **_torch_memory(device),
                **gpu.result(),
            }
        )
        log.info("memory pass %d: %s", len(passes) - 1, passes[-1])
    key = "torch_max_allocated_mib" if device.type == "cuda" else "rss_mib"
    steady = [p[key] for p in passes[1:]] or [p[key] for p in passes]
    growth = (steady[-1] - min(steady)) if steady else 0.0
    return [
        {
            "setting": f"{hours:g} h recording, {len(passes)} passes",
            "hours": hours,
            "passes": len(passes),
            "duration_s": round(time.perf_counter() - started, 1),
            "error": error,
            "peak_key": key,
            "peaks_mib": [p[key] for p in passes],
            "growth_mib": round(growth, 1),
            "ok": not error and len(passes) >= 3 and growth <= max(64.0, 0.02 * max(steady or [0.0])),
            "pass_detail": passes,
        }
    ]


def _own_pid() -> int:
    import os

    return os.getpid()


# ------------------------------------------------------------------------------------------- profile
def bench_profile(engine: Any, corpus: Path, batch_size: int, top: int) -> list[dict[str, Any]]:
    """torch.profiler over features + decode_batch on real batches, run in this thread.

    The engine runs its model in a worker thread, which the profiler does not follow; the serving path's
    own overhead shows instead in the ``engine`` rows (``gpu_busy_share``, batch sizes, padding).
    """
    from torch.profiler import ProfilerActivity, profile

    from asr_engine.features import Frontend
    from asr_engine.models.base import DecodeRequest

    model, device, dtype = engine._model, engine.device, engine._dtype
    frontend = Frontend(model.frontend, device)
    utts = sorted(_utterances(corpus), key=lambda pair: pair[1].size)
    waves = [torch.from_numpy(samples).to(device) for _, samples in utts]
    batches = [waves[i : i + batch_size] for i in range(0, len(waves), batch_size)][:4]

    def step() -> None:
        with torch.inference_mode():
            for batch in batches:
                feats, lengths = frontend(batch)
                model.decode_batch(feats.to(dtype), lengths, [DecodeRequest()] * len(batch))
        _sync(device)

    step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
    sort_key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort_key, row_limit=top))
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, sort_key, 0.0), reverse=True)[:top]
    return [
        {
            "op": event.key,
            "count": event.count,
            "self_cpu_ms": round(event.self_cpu_time_total / 1000.0, 3),
            "self_device_ms": round(getattr(event, "self_device_time_total", 0.0) / 1000.0, 3),
        }
        for event in events
    ]


# ---------------------------------------------------------------------------------------------- main
def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Engine-only benchmarks (no gRPC).")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default=None, help="bf16 | fp16 | fp32 (default: bf16 on CUDA)")
    parser.add_argument("--modes", default="model,engine,latency")
    parser.add_argument("--concurrency", default="1,16,64,256")
    parser.add_argument("--duration-s", type=float, default=15.0, help="per concurrency level")
    parser.add_argument("--format", default="wav", help="wav | mp3 | samples (no decoding)")
    parser.add_argument("--batch-sizes", default="1,8,32,128")
    parser.add_argument("--model-min-time-s", type=float, default=3.0)
    parser.add_argument("--latency-repeats", type=int, default=100)
    parser.add_argument("--memory-hours", type=float, default=2.0)
    parser.add_argument("--memory-duration-s", type=float, default=600.0)
    parser.add_argument("--memory-samples", action="store_true", help="pass samples, not WAV bytes")
    parser.add_argument("--source", type=Path, help="speech WAV folder for the memory test's recording")
    parser.add_argument("--vad", default="none", help="none | silero | fsmn")
    parser.add_argument("--vad-model-dir", type=Path)
    parser.add_argument("--max-batch-s", type=float, help="padded seconds per batch (scheduler budget)")
    parser.add_argument("--max-batch-items", type=int)
    parser.add_argument("--max-wait-ms", type=float)
    parser.add_argument(
        "--device-workers",
        type=int,
        default=1,
        help="batch workers on the device (EngineConfig.device_workers)",
    )
    parser.add_argument("--no-itn", action="store_true")
    parser.add_argument("--no-punctuation", action="store_true")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    engine = load_engine(args)
    await engine.start()
    load_s = time.perf_counter() - t0
    options = _options(args)
    modes = [m for m in args.modes.split(",") if m]
    info = engine.models[0]
    model = {
        "family": info.family,
        "path": info.path,
        "device": info.device,
        "dtype": info.dtype,
        "vad": info.vad,
    }
    rows: list[dict[str, Any]] = []

    def save(group: str, new_rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Write what is done so far after each mode, so a run cut off by a time limit keeps it."""
        rows.extend({"group": group, **row} for row in new_rows)
        return write_result(args.json, "engine", rows, model=model, load_s=round(load_s, 2))

    doc = save("load", [])
    try:
        if "model" in modes:
            doc = save(
                "model", bench_model(engine, args.corpus, _ints(args.batch_sizes), args.model_min_time_s)
            )
        if "engine" in modes:
            for fmt in args.format.split(","):
                levels = _ints(args.concurrency)
                doc = save(
                    "engine", await bench_engine(engine, args.corpus, levels, args.duration_s, fmt, options)
                )
        if "latency" in modes:
            doc = save("latency", await bench_latency(engine, args.corpus, args.latency_repeats, options))
        if "memory" in modes:
            source = args.source or args.corpus
            doc = save(
                "memory",
                await bench_memory(
                    engine,
                    source,
                    args.memory_hours,
                    args.memory_duration_s,
                    options,
                    not args.memory_samples,
                ),
            )
        if "profile" in modes:
            doc = save(
                "profile", bench_profile(engine, args.corpus, max(_ints(args.batch_sizes)), args.profile_top)
            )
    finally:
        await engine.close()
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    doc = asyncio.run(run(args))
    for row in doc["rows"]:
        if row["group"] == "profile":
            continue
        summary = {k: v for k, v in row.items() if k not in ("pass_detail",)}
        print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
