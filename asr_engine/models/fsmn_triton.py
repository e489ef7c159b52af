"""A fused Triton kernel for the SAN-M FSMN memory: ``conv(v * mask) + v * mask`` in one pass.

Why: at large batch on an H100 the model is bound by memory traffic, not GEMMs; the native form of this
block (a transposed padded copy, cuDNN's depthwise convolution, the residual add and the transpose back)
took ~55 ms of a 236 ms forward at batch 256 (bench/results/2026-11-21-h100-profile/NOTES.md). Here each
output tile reads its inputs once in place (v through its strides: the third of the fused q/k/v projection,
row stride 3d) and writes one contiguous (B, T, d) result.

triton is optional (CPU hosts and CI have none). ``available()`` says whether the kernel can run; the
process-wide switch ``set_fused_fsmn`` lets a benchmark compare it with the native path. Accumulation is in
float32 with one rounding to the output dtype (the native half-precision path rounds the convolution and
the residual sum separately, so low bits may differ). No autograd formula: callers use it for inference only.
"""

from __future__ import annotations

import logging

import torch

__all__ = ["available", "fused_fsmn_enabled", "fused_masked_depthwise_conv", "set_fused_fsmn"]

log = logging.getLogger(__name__)

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU hosts and CI: the native path is used
    triton = None
    tl = None

# Off until an engine turns it on (``EngineConfig.fused_kernels``, on by default since a fused graph forward
# measured 1.43x faster with it on an H100, bench/results/2026-11-22-h100-s5-fused/NOTES.md).
_enabled = False

# Channels are the fast (unit-stride) axis: a warp reads contiguous channel runs of one frame.
_BLOCK_T = 32
_MAX_BLOCK_D = 128


def available() -> bool:
    """True when triton imported (the kernel can be launched on CUDA, or on CPU under TRITON_INTERPRET=1)."""
    return triton is not None


def set_fused_fsmn(enabled: bool) -> None:
    """Process-wide switch (default off): True sends half-precision CUDA FSMN blocks to the kernel.

    Read at each call, so it must be set before CUDA graphs are captured to affect them.
    """
    global _enabled
    _enabled = bool(enabled)


def fused_fsmn_enabled() -> bool:
    """Whether ``set_fused_fsmn`` allows the kernel (it still needs triton and a CUDA half tensor)."""
    return _enabled


if triton is not None:

    @triton.jit
    def _fsmn_kernel(
        v_ptr,
        m_ptr,
        w_ptr,
        out_ptr,
        frames,
        channels,
        v_sb,
        v_st,
        v_sc,
        m_sb,
        m_st,
        w_sc,
        w_sk,
        o_sb,
        o_st,
        LEFT: tl.constexpr,
        K: tl.constexpr,
        BLOCK_T: tl.constexpr,
        BLOCK_D: tl.constexpr,
    ):
        """One (BLOCK_T frames x BLOCK_D channels) output tile of one batch item."""
        t = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
        c = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
        b = tl.program_id(2).to(tl.int64)
        c_ok = c < channels
        v_base = v_ptr + b * v_sb + c[None, :] * v_sc
        m_base = m_ptr + b * m_sb
        acc = tl.zeros((BLOCK_T, BLOCK_D), dtype=tl.float32)
        for k in tl.static_range(K):
            src = t + (k - LEFT)
            t_ok = (src >= 0) & (src < frames)  # zero padding outside [0, T)
            x = tl.load(
                v_base + src[:, None].to(tl.int64) * v_st, mask=t_ok[:, None] & c_ok[None, :], other=0.0
            )
            m = tl.load(m_base + src.to(tl.int64) * m_st, mask=t_ok, other=0.0)
            w = tl.load(w_ptr + c * w_sc + k * w_sk, mask=c_ok, other=0.0)
            xm = x.to(tl.float32) * m.to(tl.float32)[:, None]
            acc += xm * w.to(tl.float32)[None, :]
            if k == LEFT:  # the residual: the masked input itself
                acc += xm
        out = out_ptr + b * o_sb + t[:, None].to(tl.int64) * o_st + c[None, :]
        tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=(t < frames)[:, None] & c_ok[None, :])


def fused_masked_depthwise_conv(
    v: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, left: int, right: int
) -> torch.Tensor:
    """``conv(v * mask) + v * mask`` per channel over time, zero-padded: v (B, T, d) any strides,
    mask (B, T, 1), weight (d, 1, K) with K == left + 1 + right -> contiguous (B, T, d) in v's dtype.

    Raises RuntimeError when triton is absent (callers check ``available()`` first).
    """
    if triton is None:
        raise RuntimeError("triton is not installed; the fused FSMN kernel is unavailable")
    b, t, d = v.shape
    k = weight.shape[-1]
    if weight.shape[0] != d or k != left + 1 + right or left < 0 or right < 0:
        raise ValueError(f"weight {tuple(weight.shape)} does not fit d={d}, left={left}, right={right}")
    if mask.shape != (b, t, 1):
        raise ValueError(f"mask {tuple(mask.shape)} should be {(b, t, 1)}")
    out = torch.empty((b, t, d), dtype=v.dtype, device=v.device)
    if out.numel() == 0:
        return out
    block_d = min(_MAX_BLOCK_D, triton.next_power_of_2(d))
    grid = (triton.cdiv(t, _BLOCK_T), triton.cdiv(d, block_d), b)
    _fsmn_kernel[grid](
        v,
        mask,
        weight,
        out,
        t,
        d,
        v.stride(0),
        v.stride(1),
        v.stride(2),
        mask.stride(0),
        mask.stride(1),
        weight.stride(0),
        weight.stride(2),
        out.stride(0),
        out.stride(1),
        LEFT=left,
        K=k,
        BLOCK_T=_BLOCK_T,
        BLOCK_D=block_d,
        num_warps=4,
    )
    return out
