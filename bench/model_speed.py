"""Eager vs CUDA graphs on the model path: model-only RTFx per batch size, idle latency, token identity.

For each setting (``eager``, ``graphs``) one engine is loaded (``EngineConfig.cuda_graphs``) and measured:

* model rows: features + decode on pre-cut, length-sorted batches of fixed size (as the engine pads them:
  time axis to 16 frames); graphs apply up to the largest batch bucket, larger batches show eager speed;
* latency rows: one 5-10 s WAV at a time through ``engine.transcribe`` on an idle engine (one file repeated,
  then varied files), as ``bench.engine_bench`` measures it;
* identity: token ids of the graph path against eager mode on the same engine, on up to 64 utterances,
  one at a time and in batches of 8, 16 (bucket sizes: identical by construction) and 5 (padded to 8).

``--fused-fsmn`` turns the fused Triton FSMN kernel on (``EngineConfig.fused_kernels``; off by default) for an
A/B; each setting's result records ``fused_fsmn`` (whether the kernel was on and triton importable).

    python -m bench.model_speed --model-dir /tmp/pl --corpus /tmp/corpus --json out/model_speed.json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from bench.engine_bench import _utterances, bench_latency
from bench.sysmon import write_result

__all__ = ["main"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
Decode = Callable[[torch.Tensor, torch.Tensor, Sequence[Any]], list[Any]]


def _load(
    model_dir: Path, dtype: str, graphs: bool, device: str = "cuda", workers: int = 1, fused: bool = False
) -> Any:
    from asr_engine.engine import Engine, EngineConfig

    # fused_kernels goes through the config: making an engine sets the process-wide FSMN switch.
    config = EngineConfig(vad="none", cuda_graphs=graphs, device_workers=workers, fused_kernels=fused)
    return Engine.load(model_dir, device=device, dtype=dtype, config=config)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _decoder(engine: Any) -> Decode:
    graphs = engine._graphs
    return graphs.decode_batch if graphs is not None else engine._model.decode_batch


def _features(engine: Any, waves: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    from asr_engine.engine import _pad_time

    feats, lengths = engine._frontend(list(waves))
    return _pad_time(feats, engine.config.shape_bucket_frames).to(engine._dtype), lengths


def model_rows(
    engine: Any, corpus: Path, batch_sizes: Sequence[int], min_time_s: float
) -> list[dict[str, Any]]:
    """RTFx of features + decode at fixed batch sizes (every batch shape seen once before timing)."""
    from asr_engine.models.base import DecodeRequest

    decode = _decoder(engine)
    utts = sorted(_utterances(corpus), key=lambda pair: pair[1].size)
    waves_all = [torch.from_numpy(samples).to(engine.device) for _, samples in utts]
    rows = []
    for batch_size in batch_sizes:
        batches = [waves_all[i : i + batch_size] for i in range(0, len(waves_all), batch_size)]
        captures = engine._graphs.stats.captures if engine._graphs is not None else 0
        warm_started = time.perf_counter()
        with torch.inference_mode():
            for batch in batches:  # captures graphs for every shape here, outside the timing
                feats, lengths = _features(engine, batch)
                decode(feats, lengths, [DecodeRequest()] * len(batch))
        _sync(engine.device)
        warm_s = time.perf_counter() - warm_started
        audio_s = wall = 0.0
        passes = 0
        started = time.perf_counter()
        while passes == 0 or time.perf_counter() - started < min_time_s:
            with torch.inference_mode():
                t0 = time.perf_counter()
                for batch in batches:
                    feats, lengths = _features(engine, batch)
                    decode(feats, lengths, [DecodeRequest()] * len(batch))
                _sync(engine.device)
                wall += time.perf_counter() - t0
            audio_s += sum(w.numel() for w in waves_all) / SAMPLE_RATE
            passes += 1
        row = {
            "setting": f"model batch={batch_size}",
            "batch_size": batch_size,
            "batches_per_pass": len(batches),
            "audio_s": round(audio_s, 2),
            "wall_s": round(wall, 4),
            "rtfx": round(audio_s / wall, 1),
            "ms_per_batch": round(wall * 1000.0 / (passes * len(batches)), 3),
            "warm_pass_s": round(warm_s, 2),
            "passes": passes,
        }
        if engine._graphs is not None:
            row["graphs_captured_in_warm_pass"] = engine._graphs.stats.captures - captures
        rows.append(row)
        log.info("%s: %s", row["setting"], row)
    return rows


def identity(engine: Any, corpus: Path, limit: int) -> dict[str, Any]:
    """Token ids of graph replays vs eager mode on the same engine, per batching."""
    from asr_engine.models.base import DecodeRequest

    graphs = engine._graphs
    model = engine._model
    utts = [torch.from_numpy(samples).to(engine.device) for _, samples in _utterances(corpus, limit)]
    out: dict[str, Any] = {"utterances": len(utts)}
    for size in (1, 8, 16, 5):
        same = differ = tokens = 0
        examples: list[dict[str, Any]] = []
        for start in range(0, len(utts), size):
            batch = utts[start : start + size]
            with torch.inference_mode():
                feats, lengths = _features(engine, batch)
                requests = [DecodeRequest()] * len(batch)
                eager = model.decode_batch(feats, lengths, requests)
                replay = graphs.decode_batch(feats, lengths, requests)
            for i, (a, b) in enumerate(zip(eager, replay, strict=True)):
                tokens += len(a.token_ids)
                if a.token_ids == b.token_ids:
                    same += 1
                else:
                    differ += 1
                    if len(examples) < 3:
                        examples.append({"item": start + i, "eager": a.text, "graphs": b.text})
        out[f"batch={size}"] = {
            "identical": same,
            "different": differ,
            "tokens": tokens,
            "examples": examples,
        }
        log.info("identity batch=%d: %d identical, %d different", size, same, differ)
    out["stats"] = {k: v for k, v in vars(graphs.stats).items()}
    return out


async def _latency(engine: Any, corpus: Path, repeats: int) -> list[dict[str, Any]]:
    from asr_engine.types import TranscribeOptions

    await engine.start()
    try:
        return await bench_latency(engine, corpus, repeats, TranscribeOptions(itn=False, punctuation=False))
    finally:
        await engine.close()


def run_setting(args: argparse.Namespace, graphs: bool) -> dict[str, Any]:
    label = "graphs" if graphs else "eager"
    started = time.perf_counter()
    engine = _load(args.model_dir, args.dtype, graphs, args.device, fused=args.fused_fsmn)
    result: dict[str, Any] = {"load_s": round(time.perf_counter() - started, 2)}
    if graphs and engine._graphs is not None:
        t0 = time.perf_counter()
        with torch.inference_mode():
            captured = engine._graphs.warm_up()
        result["warm_up"] = {"graphs": captured, "s": round(time.perf_counter() - t0, 2)}
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    result["model"] = model_rows(engine, args.corpus, batch_sizes, args.min_time_s)
    if graphs and engine._graphs is not None:
        result["identity"] = identity(engine, args.corpus, args.identity_utts)
    # A fresh engine for the latency rows (its scheduler and ``device_workers`` device threads).
    del engine
    gc.collect()
    torch.cuda.empty_cache()
    engine = _load(args.model_dir, args.dtype, graphs, args.device, args.device_workers, args.fused_fsmn)
    result["latency"] = asyncio.run(_latency(engine, args.corpus, args.latency_repeats))
    if graphs and engine._graphs is not None:
        result["latency_graph_stats"] = {k: v for k, v in vars(engine._graphs.stats).items()}
    if torch.cuda.is_available():
        result["max_memory_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    log.info("%s done in %.1f s", label, time.perf_counter() - started)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Eager vs CUDA graphs on the model path (CUDA only).")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--device", default="cuda", help="cuda (cpu: a dry run of the eager rows)")
    parser.add_argument("--settings", default="eager,graphs")
    parser.add_argument("--batch-sizes", default="1,8,16,32,256")
    parser.add_argument("--min-time-s", type=float, default=2.0)
    parser.add_argument("--latency-repeats", type=int, default=50)
    parser.add_argument("--identity-utts", type=int, default=64)
    parser.add_argument(
        "--device-workers",
        type=int,
        default=1,
        help="batch workers of the latency rows' engine (device_workers)",
    )
    parser.add_argument(
        "--fused-fsmn",
        action="store_true",
        help="the fused Triton FSMN kernel, not the native path (A/B of asr_engine.models.fsmn_triton)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from asr_engine.models import fsmn_triton

    # each setting's engine sets the process-wide switch from its config (``_load``)
    fused = args.fused_fsmn and fsmn_triton.available()
    log.info("fused FSMN kernel: %s", "on" if fused else "off")
    settings: dict[str, Any] = {}
    for name in args.settings.split(","):
        try:
            settings[name] = {"fused_fsmn": fused, **run_setting(args, graphs=name == "graphs")}
        except Exception as exc:  # one failing setting must not hide the other's figures
            log.exception("setting %s failed", name)
            settings[name] = {"error": f"{type(exc).__name__}: {exc}"}
        if args.json:
            write_result(args.json, "model_speed", [], settings=settings)
    print(json.dumps(settings, indent=1, default=str)[:6000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
