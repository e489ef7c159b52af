"""Per-item cost of building Paraformer hypotheses on the host (``ParaformerModel.host_hypotheses``).

Under load the engine process is bound by the GIL: its results thread turns every batch's ids (and, for
timestamps, CIF weights) into ``Hypothesis`` objects in pure Python while the device thread needs the GIL
for the next batch's torch calls. This times exactly that call, on CPU, for a model directory's real
vocabulary, with seeded random ids:

* ``en``: English-ish picks (alphabetic tokens and ``@@`` pieces), ``zh``: Chinese-ish picks (tokens that are
  all CJK), ``mixed``: any non-special token; a mix is left out when the vocabulary has no such tokens;
* without and with word timestamps. CIF weights are shaped like Paraformer's: alphas uniform in [0, 2a)
  with ``a`` = tokens / frames, fires = FunASR's accumulator (fired + prefix - floor), so timestamps take
  the re-fire path that Paraformer's real weights take.

Each figure is µs per item: the best and the median of ``--repeats`` rounds of ``--iterations`` calls.

    python -m bench.hypothesis_speed --model-dir ../shared/parity/paraformer/model --json out.json

Session 7 (2026-11-22), this CPU (2 cores shared with other sessions, expect ±15 %), defaults (16 items x
50 tokens, 200 frames, parity vocabulary of 242 tokens), best of 7 rounds, µs per item, before (2907062:
per-token string tests, ``cif_sequential`` on numpy float32 scalars, a tensor slice per item) -> after
(``char_text.CharTable`` built once per vocabulary, the fire loop on Python floats, ids listed once per
chunk, words made in one step):

=====  ======================  ========================
mix    no timestamps           word timestamps
=====  ======================  ========================
en     116.7 -> 14.9 (7.8x)    411.0 -> 131.8 (3.1x)
zh     57.2 -> 8.2 (7.0x)      361.3 -> 126.0 (2.9x)
mixed  89.4 -> 12.8 (7.0x)     402.5 -> 137.5 (2.9x)
=====  ======================  ========================

("before" ran this module in ``git archive 2907062`` of asr_engine/ and bench/.) With timestamps, what is
left per item is about 25 µs of fire loop (201 frames), 20 µs of ``Word`` objects, 15 µs of torch/numpy
calls (the normalising sum stays torch's) and 15 µs of span arithmetic.

Outputs are identical (tests/models/test_hypothesis_building.py compares them with the old code on random
inputs of every token kind).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from asr_engine.models.base import DecodeRequest
from asr_engine.models.loader import load_model
from asr_engine.models.paraformer import ParaformerModel

__all__ = ["main", "pools", "weights_like_paraformer"]

log = logging.getLogger(__name__)

SHARED_DIR = Path(os.environ.get("LINGTING_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
DEFAULT_MODEL = SHARED_DIR / "parity" / "paraformer" / "model"


def _cjk(tok: str) -> bool:
    return bool(tok) and all("\u4e00" <= c <= "\u9fff" for c in tok)


def pools(tokens: Sequence[str]) -> dict[str, list[int]]:
    """Token ids to draw from, by mix (ids 0/1/2 and ``<...>`` specials left out); empty mixes dropped."""
    usable = [i for i, t in enumerate(tokens) if i > 2 and not (t.startswith("<") and t.endswith(">"))]
    out = {
        "en": [
            i
            for i in usable
            if tokens[i].replace("@@", "").isascii() and tokens[i].replace("@@", "").isalpha()
        ],
        "zh": [i for i in usable if _cjk(tokens[i])],
        "mixed": usable,
    }
    return {name: ids for name, ids in out.items() if ids}


def weights_like_paraformer(gen: np.random.Generator, items: int, frames: int, tokens: int) -> torch.Tensor:
    """(items, 2, frames + 1) float32 [fires, alphas] with about ``tokens`` fires per item."""
    alphas = gen.random((items, frames + 1), dtype=np.float32) * np.float32(2.0 * tokens / frames)
    prefix = np.cumsum(alphas.astype(np.float64), axis=1).astype(np.float32)
    floor = np.floor(prefix)
    prev = np.concatenate([np.zeros((items, 1), np.float32), floor[:, :-1]], axis=1)
    fires = ((floor - prev) > 0).astype(np.float32) + prefix - floor
    return torch.from_numpy(np.stack([fires, alphas], axis=1).astype(np.float32))


def _time(call: object, iterations: int, repeats: int, items: int) -> dict[str, float]:
    assert callable(call)
    for _ in range(3):
        call()
    rounds = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(iterations):
            call()
        rounds.append((time.perf_counter() - started) / iterations / items * 1e6)
    return {"best_us": round(min(rounds), 2), "median_us": round(statistics.median(rounds), 2)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL, help="a FunASR Paraformer directory")
    parser.add_argument("--items", type=int, default=16, help="items per host_hypotheses call (one chunk)")
    parser.add_argument("--tokens", type=int, default=50, help="tokens per item")
    parser.add_argument(
        "--frames", type=int, default=200, help="encoder frames per item (T; weights are T+1)"
    )
    parser.add_argument("--iterations", type=int, default=50, help="calls per timed round")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (best and median reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    torch.set_num_threads(1)  # the engine's results thread is one thread; torch's few ops here stay on it
    model = load_model(args.model_dir, device=torch.device("cpu"))
    if not isinstance(model, ParaformerModel):
        parser.error(f"{args.model_dir} is not a Paraformer directory")
    tokens = model.vocabulary.tokens
    gen = np.random.default_rng(args.seed)
    width = -(-args.tokens // 8) * 8 + 8  # the decoder's token bucket, with room past the count
    counts = [args.tokens] * args.items
    frames = [args.frames] * args.items
    weights = weights_like_paraformer(gen, args.items, args.frames, args.tokens)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for mix, pool in pools(tokens).items():
        ids = torch.from_numpy(
            np.asarray(pool, dtype=np.int64)[gen.integers(0, len(pool), (args.items, width))]
        )
        results[mix] = {}
        for ts in (False, True):
            requests = [DecodeRequest(timestamps=ts)] * args.items

            def call(ids: torch.Tensor = ids, requests: list[DecodeRequest] = requests) -> object:
                return model.host_hypotheses(ids, counts, frames, requests, weights)

            results[mix]["timestamps" if ts else "plain"] = _time(
                call, args.iterations, args.repeats, args.items
            )
    report = {
        "model_dir": str(args.model_dir),
        "vocabulary": len(tokens),
        "items": args.items,
        "tokens": args.tokens,
        "frames": args.frames,
        "iterations": args.iterations,
        "repeats": args.repeats,
        "seed": args.seed,
        "us_per_item": results,
    }
    print(f"{'mix':<8}{'plain best/median µs':>24}{'timestamps best/median µs':>30}")
    for mix, row in results.items():
        plain, stamped = row["plain"], row["timestamps"]
        print(
            f"{mix:<8}{plain['best_us']:>12.1f} /{plain['median_us']:>8.1f}"
            f"{stamped['best_us']:>18.1f} /{stamped['median_us']:>8.1f}"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
