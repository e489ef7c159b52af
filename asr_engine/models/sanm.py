"""SAN-M building blocks (self-attention with an FSMN memory), as FunASR's SANMEncoder computes them.

Used by Paraformer / SeACo-Paraformer (LayerNorm eps 1e-12), SenseVoiceSmall (eps 1e-5, extra
``tp_encoders``) and CT-Transformer punctuation (input width == model width). Parameter names follow
FunASR's state dicts so that ``load_state_dict`` works on the released files unchanged.

Shapes: B = batch, T = frames, D_in = input width, d = model width, h = heads.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from asr_engine.errors import ModelLoadError

__all__ = [
    "SanmAttention",
    "SanmEncoder",
    "SanmEncoderDims",
    "SanmEncoderLayer",
    "SanmFeedForward",
    "add_layer_norm",
    "depthwise_time_conv",
    "frame_mask",
    "fsmn_memory",
    "key_padding_bias",
    "linear_relu",
    "masked_depthwise_conv",
    "padding_mask",
    "parse_sanm_encoder_dims",
    "sinusoidal_positions",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SanmEncoderDims:
    """Sizes of a SAN-M encoder (``encoder_conf`` plus the injected input width)."""

    input_size: int
    output_size: int = 256
    attention_heads: int = 4
    linear_units: int = 2048
    num_blocks: int = 6
    tp_blocks: int = 0
    kernel_size: int = 11
    sanm_shift: int = 0
    layer_norm_eps: float = 1e-12


def parse_sanm_encoder_dims(
    encoder_conf: Mapping[str, Any], *, input_size: int, layer_norm_eps: float = 1e-12
) -> SanmEncoderDims:
    """Read FunASR's ``encoder_conf`` (defaults as in FunASR's SANMEncoder signature)."""
    conf = dict(encoder_conf)
    if conf.get("input_layer", "pe") not in ("pe", None):
        raise ModelLoadError(f"encoder_conf.input_layer {conf['input_layer']!r} is not supported (only 'pe')")
    if not conf.get("normalize_before", True):
        raise ModelLoadError("encoder_conf.normalize_before false is not supported")
    dims = SanmEncoderDims(
        input_size=int(input_size),
        output_size=int(conf.get("output_size", 256)),
        attention_heads=int(conf.get("attention_heads", 4)),
        linear_units=int(conf.get("linear_units", 2048)),
        num_blocks=int(conf.get("num_blocks", 6)),
        tp_blocks=int(conf.get("tp_blocks", 0)),
        kernel_size=int(conf.get("kernel_size", 11)),
        sanm_shift=int(conf.get("sanm_shfit", conf.get("sanm_shift", 0)) or 0),
        layer_norm_eps=float(layer_norm_eps),
    )
    if dims.output_size % dims.attention_heads:
        raise ModelLoadError(
            f"encoder output_size {dims.output_size} is not divisible by "
            f"attention_heads {dims.attention_heads}"
        )
    if dims.num_blocks < 1:
        raise ModelLoadError(f"encoder num_blocks must be >= 1, got {dims.num_blocks}")
    return dims


def sinusoidal_positions(length: int, depth: int, *, device: torch.device | None = None) -> torch.Tensor:
    """FunASR's SinusoidalPositionEncoder table (length, depth), float32.

    Positions start at 1; the first half of each row holds sines, the second half cosines, with
    timescale increment ln(10000)/(depth/2 - 1).
    """
    half = depth // 2
    increment = math.log(10000.0) / (half - 1)
    inv = torch.exp(torch.arange(half, dtype=torch.float32, device=device) * -increment)
    pos = torch.arange(1, length + 1, dtype=torch.float32, device=device)
    scaled = pos[:, None] * inv[None, :]
    return torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=1)


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Boolean (B, T): True on valid frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def key_padding_bias(valid: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention bias (B, 1, 1, T): 0 on valid keys, a large negative finite value on padding.

    A finite value (not -inf) keeps rows without any valid key NaN-free; rows with at least one valid key
    get exactly FunASR's result (its masked probabilities are zero either way).
    """
    bias = torch.zeros(valid.shape, dtype=dtype, device=valid.device)
    bias.masked_fill_(~valid, torch.finfo(dtype).min)
    return bias[:, None, None, :]


def linear_relu(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """``relu(layer(x))``; on CUDA in one GEMM whose epilogue adds the bias and applies the ReLU.

    Saves a read and a write of the (tokens x d_ff) activation per feed-forward block (the ReLU alone took
    ~5 % of GPU time at batch 256 on an H100). ReLU commutes with rounding, so only the GEMM's own
    algorithm choice can move low bits; elsewhere it is the plain two-step form.
    """
    # no autograd formula for the fused op: training (the bundled-model recipe) takes the two-step form
    if x.is_cuda and layer.bias is not None and not torch.is_grad_enabled():
        flat = torch._addmm_activation(layer.bias, x.reshape(-1, x.shape[-1]), layer.weight.t())
        return flat.view(*x.shape[:-1], flat.shape[-1])
    return F.relu(layer(x))


class SanmFeedForward(nn.Module):
    """Position-wise FFN ``w_2(ReLU(w_1 x))`` (keys ``w_1``, ``w_2``)."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.w_1 = nn.Linear(d_model, d_ff)
        self.w_2 = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(linear_relu(x, self.w_1))


def frame_mask(valid: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, T, 1) multiplier in ``dtype``: 1 on valid frames, 0 on padding (built once per forward)."""
    return valid[:, :, None].to(dtype)


def fsmn_memory(
    v: torch.Tensor, valid: torch.Tensor, conv: nn.Conv1d, kernel_size: int, shift: int
) -> torch.Tensor:
    """Depthwise FSMN over time plus its input. v: (B, T, d) -> (B, T, d), a transposed view (see below).

    ``valid`` is the (B, T, 1) ``frame_mask`` in v's dtype (a (B, T) bool is converted here, per call).
    The input is masked so padding never reaches a valid frame; the output's padded rows are left as they
    come (FunASR zeroes them again, but every consumer ignores them: attention masks padded keys, the next
    FSMN masks its input, and the models zero or drop padded rows before anything reads them).
    """
    m = valid if valid.dim() == 3 else frame_mask(valid, v.dtype)
    left = (kernel_size - 1) // 2 + (shift if shift > 0 else 0)
    return masked_depthwise_conv(v, m, conv.weight, left, kernel_size - 1 - left)


_HALF = (torch.float16, torch.bfloat16)


def _half_inference(x: torch.Tensor, *others: torch.Tensor) -> bool:
    """What the Triton kernels serve: CUDA half precision (``x``'s) without autograd on any operand.

    float32 keeps FunASR's bit parity, CPUs keep the native path, and autograd (training) needs it too.
    """
    if not x.is_cuda or x.dtype not in _HALF:
        return False
    return not (torch.is_grad_enabled() and any(t.requires_grad for t in (x, *others)))


def _use_fused(v: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor) -> bool:
    """The Triton kernel (``fsmn_triton``) where ``_half_inference`` holds and the switch is on.

    The module is imported only here, so CPU runs never import triton.
    """
    if not _half_inference(v, mask, weight):
        return False
    from asr_engine.models import fsmn_triton

    return fsmn_triton.available() and fsmn_triton.fused_fsmn_enabled()


def masked_depthwise_conv(
    v: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, left: int, right: int
) -> torch.Tensor:
    """``conv(v * mask) + v * mask`` per channel over time, zero-padded; v (B, T, d), mask (B, T, 1).

    The convolution needs a padded (B, d, T) copy. The masked input is written straight into it (one
    transposing pass instead of a multiply and then a padding copy) and the residual is added there in the
    same layout, so no elementwise op reads or writes a transposed operand except that first one and the
    caller's add of the result: a (B, d, T)-contiguous tensor returned as a (B, T, d) view, which the
    caller adds to a contiguous tensor (the sum comes out contiguous). Same values as FunASR's
    ``conv(pad(x.T)).T + x`` bit for bit: the same products, zero padding, convolution and additions.
    Measured alternatives: conv1d padding a strided view is 2x slower on a CPU; reading x in place as a
    channels-last image for cuDNN's NHWC kernel was 2.5x slower at batch 256 on an H100
    (bench/results/2026-11-21-h100-model2).

    On CUDA in float16/bfloat16 without autograd, a fused Triton kernel (``fsmn_triton``) computes the same
    sum in one pass instead and returns a contiguous (B, T, d) tensor (float32 accumulation, one rounding)
    when ``fsmn_triton.set_fused_fsmn(True)`` turned it on (an engine does, ``EngineConfig.fused_kernels``,
    on by default; the module's own switch starts off).
    """
    if _use_fused(v, mask, weight):
        from asr_engine.models import fsmn_triton

        return fsmn_triton.fused_masked_depthwise_conv(v, mask, weight, left, right)
    b, t, d = v.shape
    if v.requires_grad or mask.requires_grad:  # training: ``out=`` has no derivative
        padded = F.pad((v * mask).transpose(1, 2), (left, right))
    else:
        padded = v.new_empty(b, d, left + t + right)
        padded[:, :, :left].zero_()
        padded[:, :, left + t :].zero_()
        torch.mul(v.transpose(1, 2), mask.transpose(1, 2), out=padded[:, :, left : left + t])
    y = F.conv1d(padded, weight, groups=d)
    return y.add_(padded[:, :, left : left + t]).transpose(1, 2)


def _use_fused_norm(x: torch.Tensor, residual: torch.Tensor, norm: nn.LayerNorm) -> bool:
    """The Triton add + LayerNorm kernel (``norm_triton``) where ``_half_inference`` holds, the switch is
    on, and the operands fit it: (B, T, d) tensors of one dtype normalised over d with a weight and a bias.
    The module is imported only here, so CPU runs never import triton.
    """
    if residual.dtype != x.dtype or x.shape != residual.shape or x.dim() != 3:
        return False
    if norm.weight is None or norm.bias is None or norm.normalized_shape != (x.shape[-1],):
        return False
    if not _half_inference(x, residual, norm.weight, norm.bias):
        return False
    from asr_engine.models import norm_triton

    return (
        norm_triton.available()
        and norm_triton.fused_add_norm_enabled()
        and x.shape[-1] <= norm_triton.MAX_WIDTH
    )


def add_layer_norm(
    x: torch.Tensor, residual: torch.Tensor, norm: nn.LayerNorm
) -> tuple[torch.Tensor, torch.Tensor]:
    """``s = x + residual`` and ``norm(s)``: the pre-norm step between two sublayers; returns (s, norm(s)).

    Natively the two ops FunASR runs (bit for bit). On CUDA in float16/bfloat16 without autograd, when
    ``norm_triton.set_fused_add_norm(True)`` turned it on (off by default), one Triton pass computes both:
    the same s, and the norm in float32 from it with one rounding (may differ from native in the last bit).
    """
    if _use_fused_norm(x, residual, norm):
        from asr_engine.models import norm_triton

        return norm_triton.fused_add_layer_norm(x, residual, norm.weight, norm.bias, norm.eps)
    s = x + residual
    return s, norm(s)


def depthwise_time_conv(x: torch.Tensor, weight: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Per-channel convolution over time of x (B, T, d) with ``weight`` (d, 1, K), zero-padded.

    FunASR's form, an explicitly padded (B, d, T) copy (what ``masked_depthwise_conv`` computes in fewer
    passes; kept as the reference the benchmarks and tests compare with).
    """
    d = x.shape[-1]
    y = F.conv1d(F.pad(x.transpose(1, 2), (left, right)), weight, groups=d)
    return y.transpose(1, 2)


class SanmAttention(nn.Module):
    """Multi-head self-attention whose output is added to an FSMN memory of the values.

    Keys: ``linear_q_k_v`` (D_in -> 3d), ``fsmn_block`` (depthwise, d x 1 x K, no bias), ``linear_out``.
    """

    def __init__(self, in_size: int, d_model: int, heads: int, kernel_size: int, shift: int = 0) -> None:
        super().__init__()
        self.d_model = d_model
        self.heads = heads
        self.kernel_size = kernel_size
        self.shift = shift
        self.linear_q_k_v = nn.Linear(in_size, 3 * d_model)
        self.fsmn_block = nn.Conv1d(d_model, d_model, kernel_size, groups=d_model, bias=False)
        self.linear_out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, valid: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x (B, T, D_in), valid (B, T, 1) ``frame_mask`` (or (B, T) bool), bias (B, 1, 1, T) -> (B, T, d)."""
        b, t, _ = x.shape
        q, k, v = self.linear_q_k_v(x).split(self.d_model, dim=-1)
        memory = fsmn_memory(v, valid, self.fsmn_block, self.kernel_size, self.shift)
        d_k = self.d_model // self.heads

        def heads(z: torch.Tensor) -> torch.Tensor:
            return z.reshape(b, t, self.heads, d_k).transpose(1, 2)

        ctx = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), attn_mask=bias.to(q.dtype))
        ctx = ctx.transpose(1, 2).reshape(b, t, self.d_model)
        return self.linear_out(ctx) + memory


class SanmEncoderLayer(nn.Module):
    """Pre-norm SAN-M layer; no attention residual when the input width differs from d (``encoders0``)."""

    def __init__(self, in_size: int, dims: SanmEncoderDims) -> None:
        super().__init__()
        d = dims.output_size
        self.in_size = in_size
        self.size = d
        self.self_attn = SanmAttention(in_size, d, dims.attention_heads, dims.kernel_size, dims.sanm_shift)
        self.feed_forward = SanmFeedForward(d, dims.linear_units)
        self.norm1 = nn.LayerNorm(in_size, eps=dims.layer_norm_eps)
        self.norm2 = nn.LayerNorm(d, eps=dims.layer_norm_eps)

    def forward(self, x: torch.Tensor, valid: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        att = self.self_attn(self.norm1(x), valid, bias)
        if self.in_size == self.size:
            x, y = add_layer_norm(x, att, self.norm2)
        else:
            x, y = att, self.norm2(att)
        return x + self.feed_forward(y)


class SanmEncoder(nn.Module):
    """√d scaling, sinusoidal positions, ``encoders0`` + ``encoders`` + ``after_norm`` (+ ``tp_*``).

    forward: xs (B, T, D_in), lengths (B,) -> (B, T, d) and the same lengths (no subsampling).
    """

    def __init__(self, dims: SanmEncoderDims) -> None:
        super().__init__()
        self.dims = dims
        self.encoders0 = nn.ModuleList([SanmEncoderLayer(dims.input_size, dims)])
        self.encoders = nn.ModuleList(
            [SanmEncoderLayer(dims.output_size, dims) for _ in range(dims.num_blocks - 1)]
        )
        self.after_norm = nn.LayerNorm(dims.output_size, eps=dims.layer_norm_eps)
        if dims.tp_blocks > 0:
            self.tp_encoders = nn.ModuleList(
                [SanmEncoderLayer(dims.output_size, dims) for _ in range(dims.tp_blocks)]
            )
            self.tp_norm = nn.LayerNorm(dims.output_size, eps=dims.layer_norm_eps)

    def embed(self, xs: torch.Tensor) -> torch.Tensor:
        """Scale by √d and add positions, in float32, then return in the input's dtype."""
        t, depth = xs.shape[1], xs.shape[2]
        pe = sinusoidal_positions(t, depth, device=xs.device)
        scaled = xs.float() * (self.dims.output_size**0.5) + pe[None]
        return scaled.to(xs.dtype)

    def forward(self, xs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded rows of the output are not zeroed (callers that read them mask them)."""
        valid = padding_mask(lengths, xs.shape[1])
        bias = key_padding_bias(valid, xs.dtype)
        mask = frame_mask(valid, xs.dtype)  # once per forward, not once per layer
        x = self.embed(xs)
        for layer in self.encoders0:
            x = layer(x, mask, bias)
        for layer in self.encoders:
            x = layer(x, mask, bias)
        x = self.after_norm(x)
        if self.dims.tp_blocks > 0:
            for layer in self.tp_encoders:
                x = layer(x, mask, bias)
            x = self.tp_norm(x)
        return x, lengths
