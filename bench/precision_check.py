"""fp32 versus bf16 on a full-size model: do the two precisions decode the same tokens?

Random weights give text with no meaning, but the comparison is still honest: it measures how often bf16
arithmetic changes a greedy decision of the same network on the same audio. Reported per model: the share
of utterances whose token sequences are identical, and the token agreement rate
(1 - edit distance / reference length, fp32 as the reference).

    python -m bench.precision_check --model-dir /tmp/pl --audio-dir .dev/gpu/bench/base/audio --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asr_engine.audio import decode_audio
from asr_engine.features import Frontend
from asr_engine.models.base import DecodeRequest
from asr_engine.models.loader import load_model

__all__ = ["edit_distance", "main"]


def edit_distance(ref: Sequence[int], hyp: Sequence[int]) -> int:
    """Levenshtein distance between two token sequences."""
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1]


def _utterances(audio_dir: Path, count: int, seed: int) -> list[np.ndarray]:
    """Speech cut from the parity recordings at random offsets and lengths (2-20 s)."""
    sources = [decode_audio(p.read_bytes()).samples for p in sorted(audio_dir.glob("*.wav"))]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        source = sources[int(rng.integers(len(sources)))]
        length = min(source.size, int(rng.uniform(2.0, 20.0) * 16000))
        start = int(rng.integers(0, max(1, source.size - length)))
        out.append(source[start : start + length])
    return out


def _decode(
    model_dir: Path, dtype: torch.dtype, utts: list[np.ndarray], device: torch.device
) -> list[list[int]]:
    model: Any = load_model(model_dir, device=device, dtype=dtype)  # an AsrModel
    frontend = Frontend(model.frontend, device)
    ids: list[list[int]] = []
    with torch.inference_mode():
        for start in range(0, len(utts), 16):
            chunk = utts[start : start + 16]
            feats, lengths = frontend([torch.from_numpy(u).to(device) for u in chunk])
            hyps = model.decode_batch(feats.to(dtype), lengths, [DecodeRequest() for _ in chunk])
            ids += [list(h.token_ids) for h in hyps]
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return ids


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, action="append", required=True)
    parser.add_argument("--audio-dir", type=Path, required=True)
    parser.add_argument("--utterances", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device(args.device)
    utts = _utterances(args.audio_dir, args.utterances, args.seed)
    report = []
    for model_dir in args.model_dir:
        started = time.perf_counter()
        ref = _decode(model_dir, torch.float32, utts, device)
        hyp = _decode(model_dir, torch.bfloat16, utts, device)
        errors = sum(edit_distance(r, h) for r, h in zip(ref, hyp, strict=True))
        tokens = sum(len(r) for r in ref)
        row = {
            "model": str(model_dir),
            "utterances": len(utts),
            "tokens_fp32": tokens,
            "identical_utterances": sum(r == h for r, h in zip(ref, hyp, strict=True)) / len(utts),
            "token_agreement": 1.0 - errors / max(1, tokens),
            "seconds": round(time.perf_counter() - started, 2),
            "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
            "torch": torch.__version__,
        }
        print(json.dumps(row), flush=True)
        report.append(row)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
