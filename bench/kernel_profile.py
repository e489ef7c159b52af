"""Where one fused Paraformer forward spends the GPU's time, and what torch.compile would change.

On an H100 the gRPC path now runs at ~90 % of the model-alone throughput with the GPU's SMs busy
(bench/results/2026-11-22-h100-s5), so the next gains are inside the model. For one fixed batch shape
(real corpus audio, length-sorted, padded as the engine pads it) this measures:

* ``eager`` and ``graph``: ``ParaformerModel.decode_static`` (the fused graphs' function), ms per batch, RTFx;
* ``kernels``: torch.profiler over eager forwards: the top CUDA kernels by device time, and the device time
  by operator family (matmul, attention, FSMN convolution, normalisation, element-wise, ...);
* ``--fused-fsmn``: the same with the Triton FSMN kernel (``EngineConfig.fused_kernels``);
* ``--fused-norm``: the same with the Triton residual add + LayerNorm kernel (``norm_triton``, off by default
  in the engine), and whether its packed token ids equal the native path's (the switch off) on this batch;
* ``compiled`` (``--compile``): the same function through ``torch.compile`` (inductor, static shapes, no
  inductor CUDA graphs), recorded into a CUDA graph of our own as the engine would; compile time, ms per
  batch, and whether its token ids equal eager's.

    python -m bench.kernel_profile --model-dir /tmp/pl --corpus /tmp/corpus --batch 16 --compile \\
        --json out/kernel_profile.json
"""

from __future__ import annotations

import argparse
import collections
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from bench.engine_bench import _utterances
from bench.sysmon import write_result

__all__ = ["main"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
FAMILIES = (  # first match wins; names as cuBLAS, cuDNN, flash attention and ATen kernels spell them
    ("attention", ("flash", "fmha", "attention", "sdpa", "softmax")),
    ("matmul", ("gemm", "cutlass", "sm90", "xmma", "ampere", "cublas", "matmul")),
    ("convolution", ("conv", "depthwise", "cudnn")),
    ("normalisation", ("layer_norm", "layernorm", "norm")),
    ("copy/cast", ("copy", "cast", "convert", "cat", "index", "gather", "scatter")),
    ("reduction", ("reduce", "cumsum", "scan", "argmax", "max", "sum")),
    ("element-wise", ("elementwise", "vectorized", "unrolled", "triton", "pointwise")),
)


def _family(name: str) -> str:
    lowered = name.lower()
    for family, keys in FAMILIES:
        if any(k in lowered for k in keys):
            return family
    return "other"


def _timed(run: Callable[[], Any], device: torch.device, min_time_s: float) -> float:
    """Mean wall ms per call after one untimed call, over at least ``min_time_s``."""
    run()
    torch.cuda.synchronize(device)
    calls, started = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - started < min_time_s:
        run()
        calls += 1
        if calls % 8 == 0:
            torch.cuda.synchronize(device)
    torch.cuda.synchronize(device)
    return (time.perf_counter() - started) * 1000.0 / calls


def _graphed(fn: Callable[[], Any], device: torch.device) -> tuple[torch.cuda.CUDAGraph, Any]:
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        fn()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph, out


def kernel_table(fn: Callable[[], Any], device: torch.device, top: int) -> dict[str, Any]:
    """Device time per kernel and per family over three eager calls."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize(device)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            fn()
        torch.cuda.synchronize(device)
    per_kernel: dict[str, float] = collections.defaultdict(float)
    counts: collections.Counter[str] = collections.Counter()
    for event in prof.events():
        if event.device_type != torch.autograd.DeviceType.CUDA:
            continue
        duration = float(getattr(event, "device_time", None) or getattr(event, "cuda_time", 0.0) or 0.0)
        per_kernel[event.name] += duration / 3.0
        counts[event.name] += 1
    total = sum(per_kernel.values()) or 1.0
    families: dict[str, float] = collections.defaultdict(float)
    for name, us in per_kernel.items():
        families[_family(name)] += us
    return {
        "device_ms_per_call": round(total / 1000.0, 3),
        "kernels_per_call": round(sum(counts.values()) / 3.0),
        "families": {
            k: round(100.0 * v / total, 1) for k, v in sorted(families.items(), key=lambda kv: -kv[1])
        },
        "top": [
            {"kernel": name[:160], "share": round(100.0 * us / total, 2), "calls": counts[name] // 3}
            for name, us in sorted(per_kernel.items(), key=lambda kv: -kv[1])[:top]
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--token-share", type=float, default=0.4)
    parser.add_argument("--min-time-s", type=float, default=2.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--fused-fsmn", action="store_true", help="the Triton FSMN kernel (fused_kernels)")
    parser.add_argument(
        "--fused-norm", action="store_true", help="the Triton residual add + LayerNorm kernel (norm_triton)"
    )
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes to compile)")
    parser.add_argument("--compile-mode", default="max-autotune-no-cudagraphs")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from asr_engine.cuda_graphs import token_cap
    from asr_engine.engine import Engine, EngineConfig, _pad_time
    from asr_engine.models import norm_triton

    device = torch.device("cuda")
    # Both switches go through the config: making an engine sets the process-wide kernel switches.
    config = EngineConfig(
        vad="none", cuda_graphs=False, fused_kernels=args.fused_fsmn, fused_add_norm=args.fused_norm
    )
    engine = Engine.load(args.model_dir, device="cuda", dtype=args.dtype, config=config)
    model: Any = engine._asr  # a ParaformerModel (this bench builds one)
    utts = sorted(_utterances(args.corpus), key=lambda pair: pair[1].size)
    middle = len(utts) // 2 - args.batch // 2  # a batch of typical length
    waves = [torch.from_numpy(samples).to(device) for _, samples in utts[middle : middle + args.batch]]
    assert engine._frontend is not None
    with torch.inference_mode():
        feats, lengths = engine._frontend(waves)
        feats = _pad_time(feats, engine.config.shape_bucket_frames).to(engine._dtype)
    t = feats.shape[1]
    cap = token_cap(t, args.token_share, 8)
    audio_s = sum(w.numel() for w in waves) / SAMPLE_RATE
    result: dict[str, Any] = {
        "setting": f"batch {args.batch} x {t} frames, token cap {cap}, {args.dtype}"
        + (", fused FSMN" if args.fused_fsmn else "")
        + (", fused add+norm" if args.fused_norm else ""),
        "fused_fsmn": args.fused_fsmn,
        "fused_norm": args.fused_norm,
        "fused_norm_kernel": args.fused_norm and norm_triton.available(),
        "device_name": torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "audio_s_per_batch": round(audio_s, 2),
    }

    def eager() -> Any:
        with torch.inference_mode():
            return model.decode_static(feats, lengths, cap)

    def rate(ms: float) -> dict[str, float]:
        return {"ms_per_batch": round(ms, 3), "rtfx": round(audio_s * 1000.0 / ms, 1)}

    result["eager"] = rate(_timed(eager, device, args.min_time_s))
    with torch.inference_mode():
        graph, graph_out = _graphed(lambda: model.decode_static(feats, lengths, cap), device)
    result["graph"] = rate(_timed(graph.replay, device, args.min_time_s))
    log.info("eager %s, graph %s", result["eager"], result["graph"])
    result["kernels"] = kernel_table(eager, device, args.top)
    log.info("families %s", result["kernels"]["families"])
    reference = graph_out[0].clone()
    del graph
    if args.fused_norm:  # the same batch with the switch off: does the kernel change any token?
        norm_triton.set_fused_add_norm(False)
        native_ids = eager()[0]
        norm_triton.set_fused_add_norm(True)
        result["fused_norm_vs_native"] = {
            "same_packed_ids": bool(torch.equal(native_ids, reference)),
            "share_of_equal_entries": round(float((native_ids == reference).float().mean()), 4),
        }
        log.info("fused add+norm against native: %s", result["fused_norm_vs_native"])
    write_result(args.json, "kernel_profile", [result])  # kept should the compile run out of time
    if args.compile:
        started = time.perf_counter()
        compiled = torch.compile(model.decode_static, mode=args.compile_mode, dynamic=False, fullgraph=False)
        try:
            with torch.inference_mode():
                compiled(feats, lengths, cap)
                compiled(feats, lengths, cap)
            compile_s = time.perf_counter() - started
            with torch.inference_mode():
                cgraph, cout = _graphed(lambda: compiled(feats, lengths, cap), device)
            ms = _timed(cgraph.replay, device, args.min_time_s)
            same = bool(torch.equal(cout[0], reference))
            close = float((cout[0] == reference).float().mean())
            result["compiled"] = {
                **rate(ms),
                "mode": args.compile_mode,
                "compile_s": round(compile_s, 1),
                "same_packed_ids": same,
                "share_of_equal_entries": round(close, 4),
            }
            result["compiled_kernels"] = kernel_table(lambda: compiled(feats, lengths, cap), device, args.top)
        except Exception as exc:  # a compile failure is a finding, not a crash
            result["compiled"] = {"error": f"{type(exc).__name__}: {str(exc)[:800]}"}
        log.info("compiled %s", result["compiled"])
    write_result(args.json, "kernel_profile", [result])
    print(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
