"""Does a request's result depend on its batch neighbours? 64 requests at once versus one at a time.

Transcribes the same utterances through ``Engine.transcribe`` twice (sequentially, then all concurrently so
the scheduler batches them) and counts the utterances whose token ids or word timestamps differ.

    python -m bench.batch_identity --model-dir /tmp/pl --corpus /tmp/corpus --device cuda --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from asr_engine.engine import Engine
from asr_engine.types import TranscribeOptions

__all__ = ["main"]

OPTIONS = TranscribeOptions(itn=False, punctuation=False, vad=False, word_timestamps=True)


def _key(transcript) -> tuple:  # type: ignore[no-untyped-def]
    return tuple((s.text_raw, tuple((w.start_ms, w.end_ms) for w in s.words)) for s in transcript.segments)


async def _run(args: argparse.Namespace) -> dict:
    files = sorted(args.corpus.rglob("*.wav"))[: args.requests]
    blobs = [f.read_bytes() for f in files]
    engine = Engine.load(args.model_dir, device=args.device, dtype=args.dtype)
    await engine.start()
    try:
        started = time.perf_counter()
        alone = [_key(await engine.transcribe(b, OPTIONS)) for b in blobs]
        alone_s = time.perf_counter() - started
        batches_before = engine.scheduler.stats.batches
        started = time.perf_counter()
        together = [_key(t) for t in await asyncio.gather(*(engine.transcribe(b, OPTIONS) for b in blobs))]
        together_s = time.perf_counter() - started
        batches = engine.scheduler.stats.batches - batches_before
    finally:
        await engine.close()
    differing = [str(f.name) for f, a, b in zip(files, alone, together, strict=True) if a != b]
    return {
        "requests": len(blobs),
        "batches_when_concurrent": batches,
        "differing": len(differing),
        "differing_files": differing[:10],
        "alone_s": round(alone_s, 3),
        "concurrent_s": round(together_s, 3),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "dtype": args.dtype,
        "torch": torch.__version__,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args))
    print(json.dumps(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["differing"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
