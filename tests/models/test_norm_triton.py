"""The fused Triton add + LayerNorm kernel against native ``x + r`` and ``layer_norm``, and its dispatch.

On a GPU: the kernel in bf16/fp16 on CUDA tensors, the dispatch and its switch, and the Paraformer parity
model with and without the kernel. Without a GPU, when triton imports and TRITON_INTERPRET=1 was set before
the run, the same kernel runs on CPU tensors in Triton's interpreter; otherwise those are skipped. The
CPU dispatch and layer tests run everywhere.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from asr_engine.models import norm_triton
from asr_engine.models.base import DecodeRequest
from asr_engine.models.loader import load_model
from asr_engine.models.paraformer import CrossAttention, DecoderFsmn, DecoderLayer, ParaformerModel
from asr_engine.models.sanm import (
    SanmEncoderDims,
    SanmEncoderLayer,
    add_layer_norm,
    frame_mask,
    key_padding_bias,
    padding_mask,
)
from tests.models.conftest import features, file_samples

# (batch, frames, width): d not a power of two, the model's 512, one frame, one element per row.
SHAPES = [(3, 37, 70), (2, 29, 200), (2, 5, 512), (4, 1, 16), (1, 3, 1)]
# one rounding of a float32 value to the output dtype (bf16 keeps 8 significant bits), normalised scale
TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}  # rtol and atol

needs_interpreter = pytest.mark.skipif(
    not norm_triton.available() or os.environ.get("TRITON_INTERPRET") != "1",
    reason="needs triton and TRITON_INTERPRET=1 (set before the run)",
)


@pytest.fixture
def fused_switch() -> Iterator[None]:
    """Restore the process-wide switch whatever a test sets."""
    before = norm_triton.fused_add_norm_enabled()
    yield
    norm_triton.set_fused_add_norm(before)


def _case(
    shape: tuple[int, int, int], dtype: torch.dtype, device: str, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """x as a slice of a wider tensor (row stride 2d), r as a (B, d, T)-contiguous view, w and b."""
    b, t, d = shape
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(b, t, 2 * d, generator=gen) * 2.0 + 0.5).to(device, dtype)[..., d:]
    r = torch.randn(b, d, t, generator=gen).to(device, dtype).transpose(1, 2)
    w = (1.0 + 0.3 * torch.randn(d, generator=gen)).to(device, dtype)
    bias = (0.2 * torch.randn(d, generator=gen)).to(device, dtype)
    return x, r, w, bias


def _check_kernel(shape: tuple[int, int, int], dtype: torch.dtype, device: str, eps: float = 1e-12) -> None:
    x, r, w, bias = _case(shape, dtype, device)
    if min(shape[1:]) > 1:
        assert not x.is_contiguous() and not r.is_contiguous()
    s, y = norm_triton.fused_add_layer_norm(x, r, w, bias, eps)
    assert s.shape == y.shape == x.shape and s.dtype == y.dtype == dtype
    assert s.is_contiguous() and y.is_contiguous()
    truncated = device == "cpu" and dtype == torch.bfloat16
    if truncated:
        # Triton's interpreter truncates float32 -> bf16 (the GPU rounds to nearest even): within one ulp
        torch.testing.assert_close(s, x + r, rtol=2**-7, atol=0.0)
    else:  # the sum is the native one bit for bit (float32 add, one rounding to nearest even)
        assert torch.equal(s, x + r)
    d = shape[-1]
    reference = F.layer_norm(s.float(), (d,), w.float(), bias.float(), eps)
    tol = TOLERANCE[dtype]
    torch.testing.assert_close(y.float(), reference, rtol=tol, atol=tol)
    native = F.layer_norm(s, (d,), w, bias, eps).float()
    # no worse than the native half-precision norm, but for one rounding (a whole ulp when truncated)
    slack = 2**-7 * reference.abs().max() if truncated else tol
    assert (y.float() - reference).abs().max() <= (native - reference).abs().max() + slack


@needs_interpreter
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_kernel_matches_native_interpreted(shape: tuple[int, int, int], dtype: torch.dtype) -> None:
    _check_kernel(shape, dtype, "cpu")


@needs_interpreter
@pytest.mark.parametrize("eps", [1e-12, 1e-5, 1e-2])
def test_eps_inside_the_square_root_interpreted(eps: float) -> None:
    """Rows of small variance (~1e-6), where eps decides the scale, and constant rows (y == bias)."""
    b, t, d = 2, 6, 96
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(b, t, d, generator=gen) * 1e-3
    x[1, 2] = 0.75  # a constant row: zero variance
    r = torch.zeros(b, t, d)
    w = torch.randn(d, generator=gen)
    bias = torch.randn(d, generator=gen)
    s, y = norm_triton.fused_add_layer_norm(x, r, w, bias, eps)
    torch.testing.assert_close(y, F.layer_norm(s, (d,), w, bias, eps), rtol=1e-4, atol=1e-4)
    assert torch.equal(y[1, 2], bias)


@needs_interpreter
def test_kernel_rejects_bad_shapes() -> None:
    x, r, w, bias = _case(SHAPES[0], torch.float32, "cpu")
    with pytest.raises(ValueError, match="do not fit"):
        norm_triton.fused_add_layer_norm(x, r, w[:-1], bias, 1e-12)
    with pytest.raises(ValueError, match="should be equal"):
        norm_triton.fused_add_layer_norm(x, r[:, :-1], w, bias, 1e-12)
    with pytest.raises(ValueError, match="residual is"):
        norm_triton.fused_add_layer_norm(x, r.half(), w, bias, 1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_dispatch_keeps_the_native_path(dtype: torch.dtype, fused_switch: None) -> None:
    """On CPU the switch changes nothing: the native sum's layout (a transposed view) and exact values."""
    norm_triton.set_fused_add_norm(True)
    x, r, w, bias = _case(SHAPES[1], dtype, "cpu")
    x = x.transpose(1, 2).contiguous().transpose(1, 2)  # like r: (B, d, T)-contiguous
    norm = nn.LayerNorm(SHAPES[1][-1], eps=1e-12).to(dtype)
    with torch.no_grad():
        norm.weight.copy_(w)
        norm.bias.copy_(bias)
    with torch.inference_mode():
        s, y = add_layer_norm(x, r, norm)
    assert not s.is_contiguous()  # TensorIterator kept the inputs' layout: no kernel ran
    assert torch.equal(s, x + r)
    assert torch.equal(y, F.layer_norm(x + r, (SHAPES[1][-1],), w, bias, 1e-12))


def test_layers_compute_funasr_formulas(fused_switch: None) -> None:
    """Encoder and decoder layers (switch on, CPU float32) equal FunASR's unfused formulas bit for bit."""
    norm_triton.set_fused_add_norm(True)
    torch.manual_seed(0)
    dims = SanmEncoderDims(
        input_size=64, output_size=64, attention_heads=4, linear_units=96, num_blocks=2, kernel_size=5
    )
    enc = SanmEncoderLayer(64, dims).eval()
    lengths = torch.tensor([11, 7])
    valid = padding_mask(lengths, 11)
    mask, bias = frame_mask(valid, torch.float32), key_padding_bias(valid, torch.float32)
    x = torch.randn(2, 11, 64)
    with torch.inference_mode():
        h = x + enc.self_attn(enc.norm1(x), mask, bias)
        expected = h + enc.feed_forward(enc.norm2(h))
        assert torch.equal(enc(x, mask, bias), expected)

        dec = DecoderLayer(64, 96, DecoderFsmn(64, 5, 0), CrossAttention(64, 48, 4)).eval()
        memory = torch.randn(2, 13, 48)
        mem_bias = key_padding_bias(padding_mask(torch.tensor([13, 9]), 13), torch.float32)
        tgt_mask = frame_mask(padding_mask(torch.tensor([6, 4]), 6), torch.float32)
        tgt = torch.randn(2, 6, 64)
        t = dec.feed_forward(dec.norm1(tgt))
        assert dec.self_attn is not None and dec.src_attn is not None
        h = tgt + dec.self_attn(dec.norm2(t), tgt_mask)
        expected = h + dec.src_attn(dec.norm3(h), memory, mem_bias)
        assert torch.equal(dec(tgt, tgt_mask, memory, mem_bias), expected)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [*SHAPES, (16, 301, 512), (8, 128, 512), (64, 97, 560)])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_kernel_matches_native_cuda(shape: tuple[int, int, int], dtype: torch.dtype) -> None:
    assert norm_triton.available(), "triton must be installed on the GPU machine"
    _check_kernel(shape, dtype, "cuda")


@pytest.mark.gpu
def test_dispatch_and_switch_cuda(fused_switch: None) -> None:
    """Inference in bf16 takes the kernel (contiguous result); the switch, float32 and autograd do not."""
    d = 256
    x, r, w, bias = _case((4, 63, d), torch.bfloat16, "cuda")
    x = x.transpose(1, 2).contiguous().transpose(1, 2)  # like r: native sums keep this layout
    norm = nn.LayerNorm(d, eps=1e-12).to("cuda", torch.bfloat16)
    with torch.no_grad():
        norm.weight.copy_(w)
        norm.bias.copy_(bias)
    norm32 = copy.deepcopy(norm).float()
    with torch.inference_mode():
        norm_triton.set_fused_add_norm(True)
        fused = add_layer_norm(x, r, norm)
        direct = norm_triton.fused_add_layer_norm(x, r, w, bias, 1e-12)
        norm_triton.set_fused_add_norm(False)
        native = add_layer_norm(x, r, norm)
        norm_triton.set_fused_add_norm(True)
        full = add_layer_norm(x.float(), r.float(), norm32)
    assert fused[0].is_contiguous() and not native[0].is_contiguous() and not full[0].is_contiguous()
    assert torch.equal(fused[0], direct[0]) and torch.equal(fused[1], direct[1])
    assert torch.equal(native[0], x + r) and torch.equal(native[1], norm(x + r))
    assert torch.equal(fused[0], native[0])
    tol = TOLERANCE[torch.bfloat16]
    torch.testing.assert_close(fused[1].float(), native[1].float(), rtol=tol, atol=tol)
    with torch.no_grad():
        assert torch.equal(full[1], norm32(x.float() + r.float()))
    # autograd: the native path (a differentiable graph)
    trained = add_layer_norm(x, r, norm)
    trained[1].float().sum().backward()
    assert norm.weight.grad is not None and not trained[0].is_contiguous()


@pytest.mark.gpu
def test_kernel_in_a_cuda_graph() -> None:
    """Captured once, replayed on new inputs: the same results as eager calls."""
    x, r, w, bias = (z.contiguous() for z in _case((8, 50, 512), torch.bfloat16, "cuda"))
    norm_triton.fused_add_layer_norm(x, r, w, bias, 1e-12)  # compile outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        s, y = norm_triton.fused_add_layer_norm(x, r, w, bias, 1e-12)
    x2, r2, _, _ = _case((8, 50, 512), torch.bfloat16, "cuda", seed=5)
    x.copy_(x2)
    r.copy_(r2)
    graph.replay()
    torch.cuda.synchronize()
    s_eager, y_eager = norm_triton.fused_add_layer_norm(x, r, w, bias, 1e-12)
    assert torch.equal(s, s_eager) and torch.equal(y, y_eager)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_parity_model_with_and_without_kernel_cuda(
    parity_dir: Path, dtype: torch.dtype, fused_switch: None
) -> None:
    """Encoder output in half precision, fused or not, is as close to float32 as the native path is."""
    assert norm_triton.available(), "triton must be installed on the GPU machine"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    family = parity_dir / "paraformer"
    device = torch.device("cuda")
    waves = [file_samples(family / "audio" / n) for n in ("en_16k.wav", "zh_16k.wav")]

    def run(model_dtype: torch.dtype, fused: bool) -> tuple[torch.Tensor, list[str]]:
        norm_triton.set_fused_add_norm(fused)
        model = load_model(family / "model", device=device, dtype=model_dtype)
        assert isinstance(model, ParaformerModel)
        feats, lengths = features(model.frontend, waves, device)
        with torch.inference_mode():
            enc = model.acoustic(feats, lengths).encoder_out.float()
            texts = [h.text for h in model.decode_batch(feats, lengths, [DecodeRequest()] * len(waves))]
        return enc, texts

    exact, exact_texts = run(torch.float32, True)
    fused, fused_texts = run(dtype, True)
    native, native_texts = run(dtype, False)
    fused_err = (fused - exact).abs()
    native_err = (native - exact).abs()
    scale = exact.abs().max().item()
    assert fused_err.max().item() <= 0.05 * scale, (fused_err.max().item(), scale)
    assert fused_err.mean().item() <= 1.5 * native_err.mean().item() + 1e-4, (
        fused_err.mean().item(),
        native_err.mean().item(),
    )
    assert all(fused_texts), fused_texts
    assert len(fused_texts) == len(exact_texts) == len(native_texts)
