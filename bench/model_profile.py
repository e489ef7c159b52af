"""Where a Paraformer forward spends its ops: op counts per stage, time per forward, profiler tables.

A full-size Paraformer-large (random weights, built in memory from the parity config) runs on padded random
features of a fixed length. Three reports:

* ``ops``: aten ops per ``decode_batch`` that reach a kernel (views and other metadata-only ops counted
  apart), per stage (encoder, predictor + CIF, decoder), and host synchronisations (``.item()``,
  ``.tolist()``, ``.cpu()``): on a GPU each kernel op is one launch, and each sync stalls the launch queue.
* ``time``: wall time per ``decode_batch`` (median of ``--repeats``), eager and, on CUDA, with CUDA graphs.
* ``profile``: torch.profiler tables (top CPU ops; on CUDA also top kernels) written as text.
* ``fsmn``: one masked FSMN block alone (mask, depthwise convolution, residual), three ways: the former
  mask-then-padded-copy, conv1d padding itself, and the model's one-pass form (``masked_depthwise_conv``).

* ``attention``: the encoder's self-attention call alone (4 heads of 128, a (B, 1, 1, T) key-padding bias) per
  scaled_dot_product_attention backend: which kernel suits these short sequences best?
* ``dtypes``: every kernel op of one ``decode_batch`` checked for what sends a GPU to its slow generic
  elementwise kernel or costs an extra pass: mixed floating dtypes among the inputs, float32 results from
  bf16/fp16 inputs, pure dtype conversions, layout copies, non-contiguous (strided) inputs and outputs,
  broadcast inputs; counted per op and per call site (the innermost ``asr_engine`` frame).

``--graphs`` (CUDA) also times and profiles through ``asr_engine.cuda_graphs`` (captured before timing).

    python -m bench.model_profile --batches 1,4 --frames 120 --reports ops,time,profile --out /tmp/prof
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["audit_dtypes", "build_model", "count_ops", "dtype_tables", "main", "random_batch"]

log = logging.getLogger(__name__)

PARITY_MODEL = Path(__file__).resolve().parents[1] / ".." / "shared" / "parity" / "paraformer" / "model"
FEATURE_DIM = 560
TOKENS_PER_FRAME = 0.25  # ~4 tokens/s at 16.7 LFR frames/s, what bench/build_large.py calibrates to

# Ops that only make a new view or read metadata: no kernel on a GPU.
_METADATA_OPS = {
    "view",
    "_unsafe_view",
    "_reshape_alias",
    "reshape",
    "transpose",
    "t",
    "split",
    "split_with_sizes",
    "slice",
    "select",
    "unsqueeze",
    "squeeze",
    "expand",
    "permute",
    "as_strided",
    "alias",
    "detach",
    "unbind",
    "lift_fresh",
    "_to_copy_noop",
    "is_same_size",
    "sym_size",
    "sym_stride",
    "sym_numel",
    "dim",
}
_SYNC_OPS = {"item", "_local_scalar_dense", "nonzero", "equal", "is_nonzero"}


def build_model(
    model_dir: Path, device: torch.device, dtype: torch.dtype, *, small: bool = False, seed: int = 0
) -> Any:
    """Paraformer-large (or a 4+2-block one with ``small``) with random weights and a calibrated CIF."""
    from asr_engine.models.loader import read_model_dir
    from asr_engine.models.paraformer import build_random, paraformer_large_config
    from asr_engine.tokens import Vocabulary, load_vocabulary
    from bench.build_large import paraformer_tokens

    base = read_model_dir(model_dir).config
    config = paraformer_large_config(base)
    if small:
        config["encoder_conf"]["num_blocks"] = 4
        config["decoder_conf"].update(num_blocks=2, att_layer_num=2)
    tiny = load_vocabulary(model_dir / "tokens.json")
    vocabulary = Vocabulary(tuple(paraformer_tokens(list(tiny.tokens), 8404)))
    model = build_random(config, vocabulary, device=device, dtype=dtype, seed=seed)
    _calibrate(model, device, dtype)
    return model


def random_batch(
    batch: int, frames: int, device: torch.device, dtype: torch.dtype, *, seed: int = 1, ragged: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (B, frames, 560) ~ N(0, 1), zero past each length; lengths spread over 60-100 % of frames."""
    generator = torch.Generator().manual_seed(seed)
    feats = torch.randn(batch, frames, FEATURE_DIM, generator=generator)
    if ragged and batch > 1:
        low = max(1, int(frames * 0.6))
        lengths = torch.randint(low, frames + 1, (batch,), generator=generator)
        lengths[0] = frames
    else:
        lengths = torch.full((batch,), frames)
    feats *= (torch.arange(frames)[None, :] < lengths[:, None])[..., None]
    return feats.to(device, dtype), lengths.to(device)


def _calibrate(model: Any, device: torch.device, dtype: torch.dtype) -> None:
    """Set the CIF bias so the predictor fires ~TOKENS_PER_FRAME (random weights fire anywhere otherwise)."""
    feats, lengths = random_batch(2, 64, device, dtype, seed=99)
    with torch.inference_mode():
        enc, _ = model.net.encoder(feats, lengths)
        bias = model.net.predictor.cif_output.bias
        low, high = -30.0, 30.0
        for _ in range(20):
            mid = (low + high) / 2
            bias.fill_(mid)
            from asr_engine.models.sanm import padding_mask

            valid = padding_mask(lengths, enc.shape[1])
            rate = float(model.net.predictor(enc, valid).sum() / lengths.sum())
            low, high = (mid, high) if rate < TOKENS_PER_FRAME else (low, mid)


class _OpCounter(TorchDispatchMode):
    """Counts aten ops as they reach the dispatcher (below autograd and composite decompositions)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if not _is_noop(func.overloadpacket.__name__, args, out):
            self.ops[func.overloadpacket.__name__] += 1
        return out


def _summary(ops: Counter[str]) -> dict[str, Any]:
    metadata = sum(n for name, n in ops.items() if name in _METADATA_OPS)
    syncs = sum(n for name, n in ops.items() if name in _SYNC_OPS)
    kernels = sum(ops.values()) - metadata
    return {
        "kernel_ops": kernels,
        "metadata_ops": metadata,
        "sync_ops": syncs,
        "top": dict(Counter({k: v for k, v in ops.items() if k not in _METADATA_OPS}).most_common(15)),
    }


def count_ops(model: Any, feats: torch.Tensor, lengths: torch.Tensor) -> dict[str, Any]:
    """Ops of one ``decode_batch``, split by stage (the stages are wrapped in counting modes)."""
    from asr_engine.models.base import DecodeRequest

    requests = [DecodeRequest() for _ in range(feats.shape[0])]
    with torch.inference_mode():
        model.decode_batch(feats, lengths, requests)  # warm caches (positions, masks) first
        stages: dict[str, Counter[str]] = {}
        net = model.net
        originals = {
            "encoder": net.encoder.forward,
            "predictor": net.predictor.forward,
            "decoder": net.decoder.forward,
        }

        def wrap(name: str, fn: Any) -> Any:
            def inner(*args: Any, **kwargs: Any) -> Any:
                with _OpCounter() as counter:
                    out = fn(*args, **kwargs)
                stages[name] = stages.get(name, Counter()) + counter.ops
                return out

            return inner

        for name, fn in originals.items():
            getattr(net, name).forward = wrap(name, fn)
        try:
            with _OpCounter() as total:
                model.decode_batch(feats, lengths, requests)
        finally:
            for name in originals:
                delattr(getattr(net, name), "forward")
    out = {"total": _summary(total.ops)}
    for name, ops in stages.items():
        out[name] = _summary(ops)
    rest = total.ops.copy()
    for ops in stages.values():
        rest.subtract(ops)
    out["outside_net (cif, masks, readback)"] = _summary(+rest)
    return out


_LOW = (torch.bfloat16, torch.float16)
_COPY_OPS = {"to", "_to_copy", "copy_", "clone", "contiguous", "constant_pad_nd", "pad", "cat"}
_FILL_OPS = {"fill_", "zero_", "zeros", "zeros_like", "new_zeros", "full", "full_like", "ones", "ones_like"}
# Flags of one call, in report order.
DTYPE_FLAGS = (
    "mixed_dtypes",  # floating inputs of more than one dtype (0-dim scalars ignored)
    "fp32_from_low",  # a float32 result computed from bf16/fp16 inputs
    "dtype_copy",  # _to_copy/copy_ whose only job is a dtype change
    "layout_copy",  # a same-dtype copy (contiguous, clone, pad, cat, copy_)
    "transposed_input",  # a strided input whose last dim is not contiguous (uncoalesced on a GPU)
    "strided_input",  # any other strided input: a slice or split view with a contiguous last dim
    "transposed_output",  # a result whose last dim is not contiguous (the next op reads it transposed)
    "strided_output",  # any other non-contiguous result
    "broadcast_input",  # an input smaller than the result (stride 0 on a GPU)
)


def _is_noop(name: str, args: Any, out: Any) -> bool:
    """``aten::to`` that returns its input (same dtype and device): no kernel."""
    return name == "to" and bool(args) and out is args[0]


def _is_elementwise(func: Any) -> bool:
    """Pointwise ops, copies and fills: each is one memory-bound pass (a kernel launch on a GPU)."""
    name = func.overloadpacket.__name__
    return torch.Tag.pointwise in func.tags or name in _COPY_OPS or name in _FILL_OPS


def _call_site() -> str:
    """The innermost ``asr_engine`` frame calling the op, as ``module.py:function``."""
    for frame in reversed(traceback.extract_stack()):
        if "/asr_engine/" in frame.filename:
            return f"{Path(frame.filename).name}:{frame.name}"
    return "(outside asr_engine)"


def _transposed(t: torch.Tensor) -> bool:
    return t.shape[-1] > 1 and t.stride(-1) != 1


def _flags(func: Any, args: Any, kwargs: Any, out: Any) -> list[str]:
    name = func.overloadpacket.__name__
    kwargs = {k: v for k, v in kwargs.items() if k != "out"}  # an ``out=`` tensor is the result
    inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
    outputs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
    if name == "copy_":  # copy_(dst, src): dst is the result
        outputs, inputs = inputs[:1], inputs[1:]
    flags: list[str] = []
    if name in _FILL_OPS:  # reads no values: only a strided (partial) fill is worth noting
        return ["strided_output"] if any(not t.is_contiguous() for t in outputs) else []
    floats = {t.dtype for t in inputs if t.is_floating_point() and t.dim() > 0}
    if len(floats) > 1 and name not in ("to", "_to_copy", "copy_"):
        flags.append("mixed_dtypes")
    if floats & set(_LOW) and any(t.dtype == torch.float32 for t in outputs):
        flags.append("fp32_from_low")
    if name in _COPY_OPS:
        src = {t.dtype for t in inputs}
        dst = {t.dtype for t in outputs}
        flags.append("dtype_copy" if src != dst else "layout_copy")
    shape = outputs[0].shape if outputs else None
    broadcast = False
    strided: set[str] = set()
    for t in inputs:
        if t.dim() == 0 or t.numel() <= 1:
            continue
        resized = name not in _COPY_OPS and shape is not None and t.shape != shape  # pad/cat resize
        if resized or any(s == 0 for s in t.stride()):
            broadcast = True
        elif not t.is_contiguous():
            strided.add("transposed_input" if _transposed(t) else "strided_input")
    flags += sorted(strided, key=DTYPE_FLAGS.index)
    odd = [t for t in outputs if t.dim() > 0 and t.numel() > 1 and not t.is_contiguous()]
    if any(_transposed(t) for t in odd):
        flags.append("transposed_output")
    elif odd:
        flags.append("strided_output")
    if broadcast and _is_elementwise(func):
        flags.append("broadcast_input")
    return flags


class _DtypeAudit(TorchDispatchMode):
    """Records, per kernel op and per call site, how many calls carry each of ``DTYPE_FLAGS``."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.elementwise: Counter[str] = Counter()
        self.flags: dict[str, Counter[str]] = defaultdict(Counter)
        self.sites: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        self.examples: dict[tuple[str, str, str], str] = {}

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if name in _METADATA_OPS or _is_noop(name, args, out):
            return out
        self.ops[name] += 1
        if _is_elementwise(func):
            self.elementwise[name] += 1
        flags = _flags(func, args, kwargs, out)
        if flags:
            site = _call_site()
            for flag in flags:
                self.flags[name][flag] += 1
                self.sites[(site, name)][flag] += 1
                self.examples.setdefault((site, name, flag), _describe(args, out))
        return out


def _describe(args: Any, out: Any) -> str:
    def one(t: torch.Tensor) -> str:
        dtype = str(t.dtype).replace("torch.", "")
        layout = "" if t.is_contiguous() else f" strides {tuple(t.stride())}"
        return f"{dtype}{tuple(t.shape)}{layout}"

    ins = [one(t) for t in tree_flatten(args)[0] if isinstance(t, torch.Tensor)]
    outs = [one(t) for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
    return f"{', '.join(ins)} -> {', '.join(outs)}"


def audit_dtypes(model: Any, feats: torch.Tensor, lengths: torch.Tensor) -> dict[str, Any]:
    """The ``DTYPE_FLAGS`` counts of one ``decode_batch`` (after a warm-up call), per op and per call site."""
    from asr_engine.models.base import DecodeRequest

    requests = [DecodeRequest() for _ in range(feats.shape[0])]
    with torch.inference_mode():
        model.decode_batch(feats, lengths, requests)
        with _DtypeAudit() as audit:
            model.decode_batch(feats, lengths, requests)
    return {
        "kernel_ops": sum(audit.ops.values()),
        "elementwise_ops": sum(audit.elementwise.values()),
        "elementwise_by_op": dict(audit.elementwise.most_common()),
        "flagged_calls": {flag: sum(c[flag] for c in audit.flags.values()) for flag in DTYPE_FLAGS},
        "by_op": {
            name: {"calls": audit.ops[name], **{f: c[f] for f in DTYPE_FLAGS if c[f]}}
            for name, c in sorted(audit.flags.items(), key=lambda kv: -sum(kv[1].values()))
        },
        "by_site": [
            {"site": site, "op": name, **dict(c), "example": audit.examples[(site, name, next(iter(c)))]}
            for (site, name), c in sorted(audit.sites.items(), key=lambda kv: -sum(kv[1].values()))
        ],
    }


def dtype_tables(report: dict[str, Any]) -> str:
    """Markdown tables of an ``audit_dtypes`` report (per op, then per call site)."""
    short = (
        "mixed",
        "fp32<-low",
        "dtype copy",
        "layout copy",
        "transp. in",
        "strided in",
        "transp. out",
        "strided out",
        "bcast in",
    )
    lines = [
        f"kernel ops {report['kernel_ops']}, elementwise (pointwise + copies) {report['elementwise_ops']}",
        "",
        "| op | calls | " + " | ".join(short) + " |",
        "|---|---|" + "---|" * len(short),
    ]
    for name, row in report["by_op"].items():
        cells = [str(row.get(f, "")) for f in DTYPE_FLAGS]
        lines.append(f"| {name} | {row['calls']} | " + " | ".join(cells) + " |")
    total = [str(report["flagged_calls"][f]) for f in DTYPE_FLAGS]
    lines += ["| **all** | " + str(report["kernel_ops"]) + " | " + " | ".join(total) + " |", ""]
    lines += ["| call site | op | flags (calls) | first call with the first flag |", "|---|---|---|---|"]
    for row in report["by_site"]:
        flags = ", ".join(f"{f} {row[f]}" for f in DTYPE_FLAGS if f in row)
        lines.append(f"| {row['site']} | {row['op']} | {flags} | {row['example']} |")
    return "\n".join(lines)


def fsmn_variants(batch: int, frames: int, device: torch.device, dtype: torch.dtype, repeats: int) -> dict:
    """Median ms of one masked FSMN block (d=512, K=11, v a split view) per formulation; their differences."""
    import torch.nn.functional as F

    from asr_engine.models.sanm import masked_depthwise_conv

    d, k, left = 512, 11, 5
    v = torch.randn(batch, frames, 3 * d, device=device, dtype=dtype).split(d, dim=-1)[2]
    mask = torch.ones(batch, frames, 1, device=device, dtype=dtype)
    mask[batch // 2 :, frames // 2 :] = 0
    weight = torch.randn(d, 1, k, device=device, dtype=dtype) / k

    def padded_copy() -> torch.Tensor:  # before 2026-11-21 (issue 7): mask, padded copy, conv, add
        x = v * mask
        return F.conv1d(F.pad(x.transpose(1, 2), (left, left)), weight, groups=d).transpose(1, 2) + x

    def conv_padding() -> torch.Tensor:
        x = v * mask
        return F.conv1d(x.transpose(1, 2), weight, padding=left, groups=d).transpose(1, 2) + x

    def in_model() -> torch.Tensor:  # masked straight into the padded buffer, residual added in (B, d, T)
        return masked_depthwise_conv(v, mask, weight, left, left)

    out: dict[str, Any] = {"batch": batch, "frames": frames}
    results = {}
    with torch.inference_mode():
        for name, fn in (
            ("padded_copy", padded_copy),
            ("conv_padding", conv_padding),
            ("in_model", in_model),
        ):
            results[name] = fn()
            out[f"{name}_ms"] = _median_ms(fn, device, repeats)
    out["max_abs_diff_vs_padded_copy"] = {
        name: float((value.float() - results["padded_copy"].float()).abs().max())
        for name, value in results.items()
    }
    return out


def attention_backends(
    batch: int, frames: int, device: torch.device, dtype: torch.dtype, repeats: int
) -> dict[str, Any]:
    """Median ms of one masked self-attention call per SDPA backend (None where a backend refuses)."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from asr_engine.models.sanm import key_padding_bias, padding_mask

    heads, d_k = 4, 128
    q, k, v = (torch.randn(batch, heads, frames, d_k, device=device, dtype=dtype) for _ in range(3))
    lengths = torch.randint(max(1, frames // 2), frames + 1, (batch,), device=device)
    bias = key_padding_bias(padding_mask(lengths, frames), dtype)
    out: dict[str, Any] = {"batch": batch, "frames": frames}
    backends = {
        "default": None,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "flash_no_mask": SDPBackend.FLASH_ATTENTION,
        "math": SDPBackend.MATH,
    }
    with torch.inference_mode():
        for name, backend in backends.items():
            mask = None if name == "flash_no_mask" else bias

            def call(mask: torch.Tensor | None = mask) -> torch.Tensor:
                return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

            def fn(backend: Any = backend, call: Any = call) -> torch.Tensor:
                if backend is None:
                    return call()
                with sdpa_kernel(backend):
                    return call()

            try:
                out[f"{name}_ms"] = _median_ms(fn, device, repeats)
            except RuntimeError as exc:
                out[f"{name}_ms"] = None
                out[f"{name}_error"] = str(exc).splitlines()[0][:200]
    return out


def time_forward(model: Any, feats: torch.Tensor, lengths: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median and min wall ms of ``decode_batch`` (synchronised on CUDA)."""
    from asr_engine.models.base import DecodeRequest

    requests = [DecodeRequest() for _ in range(feats.shape[0])]
    times = []
    with torch.inference_mode():
        for i in range(repeats + 2):
            _sync(feats.device)
            t0 = time.perf_counter()
            model.decode_batch(feats, lengths, requests)
            _sync(feats.device)
            if i >= 2:
                times.append((time.perf_counter() - t0) * 1000.0)
    return {"median_ms": round(statistics.median(times), 3), "min_ms": round(min(times), 3), "n": len(times)}


def profile_tables(model: Any, feats: torch.Tensor, lengths: torch.Tensor, top: int) -> str:
    """Text tables of one profiled ``decode_batch``: top CPU ops, and on CUDA the top kernels."""
    from torch.profiler import ProfilerActivity, profile

    from asr_engine.models.base import DecodeRequest

    requests = [DecodeRequest() for _ in range(feats.shape[0])]
    on_cuda = feats.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])
    with torch.inference_mode():
        model.decode_batch(feats, lengths, requests)
        _sync(feats.device)
        with profile(activities=activities) as prof:
            model.decode_batch(feats, lengths, requests)
            _sync(feats.device)
    averages = prof.key_averages()
    parts = [
        f"## top {top} CPU ops by self CPU time",
        averages.table(sort_by="self_cpu_time_total", row_limit=top),
    ]
    if on_cuda:
        parts += [
            f"## top {top} CUDA kernels/ops by self CUDA time",
            averages.table(sort_by="self_cuda_time_total", row_limit=top),
        ]
    return "\n".join(parts)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """Median wall ms of ``fn`` over ``repeats`` synchronised calls, after three warm-up calls."""
    for _ in range(3):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1000.0)
    return round(statistics.median(times), 4)


def _runner(model: Any, feats: torch.Tensor, lengths: torch.Tensor) -> Any:
    """``model`` wrapped in CUDA graphs, with this batch's graphs captured (so timing sees replays)."""
    from asr_engine.cuda_graphs import GraphSettings, ParaformerGraphs
    from asr_engine.models.base import DecodeRequest

    b = feats.shape[0]
    buckets = tuple(sorted({1, 2, 4, 8, 16, b}))
    runner = ParaformerGraphs(
        model, GraphSettings(batch_buckets=buckets, max_frames=max(512, feats.shape[1]))
    )
    with torch.inference_mode():
        runner.decode_batch(feats, lengths, [DecodeRequest() for _ in range(b)])
    _sync(feats.device)

    class Wrapped:  # the model's face with decode_batch replayed
        net = model.net

        def decode_batch(self, *args: Any) -> Any:
            return runner.decode_batch(*args)

    return Wrapped()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=PARITY_MODEL, help="tiny parity Paraformer dir")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--batches", default="1", help="comma-separated batch sizes")
    parser.add_argument("--frames", type=int, default=120, help="padded LFR frames (120 = 7.2 s)")
    parser.add_argument("--reports", default="ops,time")
    parser.add_argument("--graphs", action="store_true", help="also time/profile with CUDA graphs")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--small", action="store_true", help="4 encoder + 2 decoder blocks")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out", type=Path, help="folder for the JSON and text tables")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    device = torch.device(args.device)
    reports = set(args.reports.split(","))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    model = None
    if reports - {"fsmn", "attention"}:
        model = build_model(args.model_dir.resolve(), device, dtype, small=args.small)
    for batch in [int(b) for b in args.batches.split(",") if b]:
        if "fsmn" in reports:
            results.append({"fsmn": fsmn_variants(batch, args.frames, device, dtype, max(args.repeats, 20))})
            log.info("fsmn: %s", results[-1])
        if "attention" in reports:
            results.append(
                {"attention": attention_backends(batch, args.frames, device, dtype, max(args.repeats, 20))}
            )
            log.info("attention: %s", results[-1])
        if model is None:
            continue
        feats, lengths = random_batch(batch, args.frames, device, dtype)
        variants = [("eager", model)]
        if args.graphs and device.type == "cuda":
            variants.append(("graphs", _runner(model, feats, lengths)))
        for name, face in variants:
            result: dict[str, Any] = {
                "batch": batch,
                "frames": args.frames,
                "device": str(device),
                "mode": name,
            }
            if "ops" in reports and name == "eager":
                result["ops"] = count_ops(model, feats, lengths)
                log.info("ops: %s", json.dumps({k: v["kernel_ops"] for k, v in result["ops"].items()}))
            if "dtypes" in reports and name == "eager":
                result["dtypes"] = audit_dtypes(model, feats, lengths)
                text = dtype_tables(result["dtypes"])
                print(text)
                if args.out:
                    (args.out / f"dtypes-{args.dtype}-b{batch}-t{args.frames}.md").write_text(text + "\n")
            if "time" in reports:
                result["time"] = time_forward(face, feats, lengths, args.repeats)
                log.info("b=%d %s time: %s", batch, name, result["time"])
            results.append(result)
            if "profile" in reports:
                text = profile_tables(face, feats, lengths, args.top)
                print(text)
                if args.out:
                    (args.out / f"profile-{name}-b{batch}-t{args.frames}.txt").write_text(text)
    print(json.dumps(results, indent=1))
    if args.out:
        (args.out / f"model_profile-{args.device.replace(':', '')}.json").write_text(
            json.dumps(results, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
