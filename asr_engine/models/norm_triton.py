"""A fused Triton kernel for a pre-norm residual: ``s = x + r; y = LayerNorm(s)`` in one pass.

Why: on an H100 with the FSMN kernel on, LayerNorm (168 calls per Paraformer forward, 17 % of device time)
and residual adds (180 calls, 9 %) are the largest costs after the matmuls
(bench/results/2026-11-22-h100-s5-fused/kernel_profile-fused.json). Natively the sum is written, read back
by the norm and the norm's output written: three passes over (B, T, d). Here each row is read once from x
and r, and s and y are written once.

Numerics: the sum is rounded to the input dtype first (as ``x + r`` is, so s is bit-identical to the
native sum) and the statistics are taken of that rounded sum in float32: biased variance, eps added inside
the square root, as ``nn.LayerNorm`` does. y is rounded once from float32. The native kernel accumulates in
another order (Welford), so y may differ from it in the last bit.

triton is optional (CPU hosts and CI have none): ``available()`` says whether the kernel can run. The
process-wide switch ``set_fused_add_norm`` is off by default (not yet measured on a GPU). No autograd
formula: callers use it for inference only.
"""

from __future__ import annotations

import torch

__all__ = ["MAX_WIDTH", "available", "fused_add_layer_norm", "fused_add_norm_enabled", "set_fused_add_norm"]

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU hosts and CI: the native path is used
    triton = None
    tl = None

_enabled = False

# One row per program, held in registers; wider rows would spill (the models here have d <= 560).
MAX_WIDTH = 8192


def available() -> bool:
    """True when triton imported (the kernel can be launched on CUDA, or on CPU under TRITON_INTERPRET=1)."""
    return triton is not None


def set_fused_add_norm(enabled: bool) -> None:
    """Process-wide switch (default off): True sends half-precision CUDA add + LayerNorm pairs to the kernel.

    Read at each call, so it must be set before CUDA graphs are captured to affect them.
    """
    global _enabled
    _enabled = bool(enabled)


def fused_add_norm_enabled() -> bool:
    """Whether ``set_fused_add_norm`` allows the kernel (it still needs triton and a CUDA half tensor)."""
    return _enabled


if triton is not None:

    @triton.jit
    def _add_norm_kernel(
        x_ptr,
        r_ptr,
        w_ptr,
        b_ptr,
        s_ptr,
        y_ptr,
        frames,
        width,
        x_sb,
        x_st,
        x_sc,
        r_sb,
        r_st,
        r_sc,
        eps,
        BLOCK_D: tl.constexpr,
    ):
        """One (batch item, frame) row: s = x + r (rounded), y = (s - mean) * rstd * w + b."""
        row = tl.program_id(0).to(tl.int64)
        b = row // frames
        t = row % frames
        c = tl.arange(0, BLOCK_D)
        ok = c < width
        x = tl.load(x_ptr + b * x_sb + t * x_st + c * x_sc, mask=ok, other=0.0)
        r = tl.load(r_ptr + b * r_sb + t * r_st + c * r_sc, mask=ok, other=0.0)
        s = (x.to(tl.float32) + r.to(tl.float32)).to(s_ptr.dtype.element_ty)
        tl.store(s_ptr + row * width + c, s, mask=ok)
        v = s.to(tl.float32)  # statistics of the rounded sum, the tensor the native norm reads
        mean = tl.sum(v, axis=0) / width
        diff = tl.where(ok, v - mean, 0.0)
        var = tl.sum(diff * diff, axis=0) / width
        rstd = 1.0 / tl.sqrt(var + eps)
        w = tl.load(w_ptr + c, mask=ok, other=0.0).to(tl.float32)
        bias = tl.load(b_ptr + c, mask=ok, other=0.0).to(tl.float32)
        y = diff * rstd * w + bias
        tl.store(y_ptr + row * width + c, y.to(y_ptr.dtype.element_ty), mask=ok)


def fused_add_layer_norm(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``s = x + residual`` and ``layer_norm(s, (d,), weight, bias, eps)`` for (B, T, d) tensors of any
    strides (contiguous last dims read fastest) -> contiguous (s, y) in x's dtype.

    Raises RuntimeError when triton is absent (callers check ``available()`` first), ValueError on shapes.
    """
    if triton is None:
        raise RuntimeError("triton is not installed; the fused add + LayerNorm kernel is unavailable")
    if x.dim() != 3 or residual.shape != x.shape:
        raise ValueError(f"x {tuple(x.shape)} and residual {tuple(residual.shape)} should be equal (B, T, d)")
    b, t, d = x.shape
    if weight.shape != (d,) or bias.shape != (d,):
        raise ValueError(f"weight {tuple(weight.shape)} / bias {tuple(bias.shape)} do not fit d={d}")
    if d > MAX_WIDTH:
        raise ValueError(f"rows of {d} > {MAX_WIDTH} elements are not supported")
    if residual.dtype != x.dtype:
        raise ValueError(f"x is {x.dtype} but residual is {residual.dtype}")
    s = torch.empty((b, t, d), dtype=x.dtype, device=x.device)
    y = torch.empty_like(s)
    if s.numel() == 0:
        return s, y
    weight = weight.contiguous()
    bias = bias.contiguous()
    block_d = triton.next_power_of_2(d)
    _add_norm_kernel[(b * t,)](
        x,
        residual,
        weight,
        bias,
        s,
        y,
        t,
        d,
        x.stride(0),
        x.stride(1),
        x.stride(2),
        residual.stride(0),
        residual.stride(1),
        residual.stride(2),
        float(eps),
        BLOCK_D=block_d,
        num_warps=min(8, max(1, block_d // 256)),
    )
    return s, y
