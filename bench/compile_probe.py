"""Probe: does ``torch.compile`` of the Paraformer encoder and decoder speed up large batches on a GPU?

    python bench/compile_probe.py MODEL_DIR CORPUS OUT.json ",max-autotune-no-cudagraphs"

The last argument lists compile modes (empty = default). Rows come from ``bench.model_speed.model_rows``,
eager first, in the same process. Result of 2026-11-21: bench/results/2026-11-21-h100-model2/NOTES.md.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch

from bench.model_speed import _load, model_rows


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO)
    model_dir, corpus, out, modes = Path(argv[0]), Path(argv[1]), Path(argv[2]), argv[3].split(",")
    result: dict[str, Any] = {}
    try:
        import triton  # type: ignore[import-not-found]

        result["triton"] = triton.__version__
    except ImportError as exc:
        result["triton"] = repr(exc)
    engine = _load(model_dir, "bf16", False)
    result["eager"] = model_rows(engine, corpus, [32, 256], 1.5)
    net = engine._model.net
    eager_forwards = (net.encoder.forward, net.decoder.forward)
    for mode in modes:
        started = time.perf_counter()
        try:
            torch._dynamo.reset()
            net.encoder.forward = torch.compile(eager_forwards[0], dynamic=True, mode=mode or None)
            net.decoder.forward = torch.compile(eager_forwards[1], dynamic=True, mode=mode or None)
            rows = model_rows(engine, corpus, [32, 256], 1.5)
            result[f"compile:{mode}"] = {"rows": rows, "first_s": round(time.perf_counter() - started, 1)}
        except Exception as exc:  # a probe: record the failure and go on to the next mode
            result[f"compile:{mode}"] = repr(exc)[:2000]
        out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result)[-3000:], flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
