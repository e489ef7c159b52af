"""cuDNN on or off for the engine's convolutions: idle latency on new and seen lengths, and a large batch.

Every utterance length is a new input shape. With cuDNN each new shape costs an execution-plan build
for the depthwise FSMN convolutions before anything runs; PyTorch's own kernels need no such step. This
measures both settings in one process on disjoint sets of files (so neither inherits the other's plan
cache): one request at a time through ``transcribe_samples`` (first pass = new lengths, second pass = the
same files again), then batches of ``--batch`` pre-cut utterances through the device worker's own step.

    python -m bench.shape_ab --model-dir DIR --corpus CORPUS --device cuda --dtype bf16 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asr_engine.engine import Engine, EngineConfig, _SegmentJob
from asr_engine.models.base import DecodeRequest
from asr_engine.types import TranscribeOptions
from bench.corpus import load_manifest
from bench.sysmon import percentiles

__all__ = ["main"]

log = logging.getLogger(__name__)


def _utterances(corpus: Path, lo_s: float, hi_s: float) -> list[np.ndarray]:
    import soundfile

    out = []
    for item in load_manifest(corpus):
        if item.kind == "utt" and "wav" in item.files and lo_s <= item.duration_s <= hi_s:
            samples, _ = soundfile.read(corpus / item.files["wav"], dtype="float32")
            out.append(samples)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


async def _idle(engine: Engine, utts: list[np.ndarray]) -> dict[str, Any]:
    options = TranscribeOptions()
    passes = []
    for _ in range(2):
        times = []
        for samples in utts:
            t0 = time.perf_counter()
            await engine.transcribe_samples(samples, options)
            times.append((time.perf_counter() - t0) * 1000.0)
        passes.append(percentiles(times))
    return {"new_lengths_ms": passes[0], "seen_lengths_ms": passes[1]}


def _batch(engine: Engine, utts: list[np.ndarray], batch: int, repeats: int) -> dict[str, Any]:
    jobs = [_SegmentJob(s, DecodeRequest()) for s in utts[:batch]]
    audio_s = sum(s.size for s in utts[:batch]) / 16000
    engine._run_batch(jobs)  # this shape once
    _sync(engine.device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        engine._run_batch(jobs)
    _sync(engine.device)
    wall = (time.perf_counter() - t0) / repeats
    return {"batch": len(jobs), "ms_per_batch": round(wall * 1000.0, 2), "rtfx": round(audio_s / wall, 1)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    engine = Engine.load(
        args.model_dir, device=args.device, dtype=args.dtype, config=EngineConfig(vad="none")
    )
    await engine.start()
    short = _utterances(args.corpus, 5.0, 10.0)
    every = _utterances(args.corpus, 0.0, 1e9)
    n = min(args.files, len(short) // 2)
    results: dict[str, Any] = {"device": str(engine.device), "files_per_setting": n}
    for k, flag in enumerate((False, True)):
        engine._config = dataclasses.replace(engine._config, cudnn=flag)
        idle = await _idle(engine, short[k * n : (k + 1) * n])
        big = _batch(engine, every, args.batch, args.repeats)
        results[f"cudnn_{'on' if flag else 'off'}"] = {"idle": idle, "batch": big}
        log.info("cudnn %s: %s", flag, json.dumps(results[f"cudnn_{'on' if flag else 'off'}"]))
    await engine.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--files", type=int, default=25, help="5-10 s files per setting")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    results = asyncio.run(run(args))
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
