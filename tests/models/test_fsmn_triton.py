"""The fused Triton FSMN kernel against the convolution reference (``depthwise_time_conv``).

On a GPU: the kernel in bf16/fp16 on CUDA tensors, the dispatch and its switch, and the Paraformer parity
model's encoder with and without the kernel. Without a GPU, when triton imports and TRITON_INTERPRET=1 was
set before the run, the same kernel runs on CPU tensors in Triton's interpreter; otherwise those are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from asr_engine.models import fsmn_triton
from asr_engine.models.base import DecodeRequest
from asr_engine.models.loader import load_model
from asr_engine.models.paraformer import ParaformerModel
from asr_engine.models.sanm import depthwise_time_conv, masked_depthwise_conv
from tests.models.conftest import features, file_samples

# (batch, frames, channels, kernel size, shift): odd T, d not a multiple of the channel block (128), shift > 0
# (left != right), T shorter than the kernel, a single frame.
SHAPES = [
    (3, 37, 70, 11, 0),
    (2, 29, 200, 11, 1),
    (2, 17, 33, 5, 2),
    (1, 5, 8, 11, 0),
    (4, 1, 16, 11, 0),
]
# bf16 keeps 8 significant bits: one rounding of the float32 sum is within 2^-8 relative.
TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}  # rtol and atol

needs_interpreter = pytest.mark.skipif(
    not fsmn_triton.available() or os.environ.get("TRITON_INTERPRET") != "1",
    reason="needs triton and TRITON_INTERPRET=1 (set before the run)",
)


@pytest.fixture
def fused_switch() -> Iterator[None]:
    """Restore the process-wide switch whatever a test sets."""
    before = fsmn_triton.fused_fsmn_enabled()
    yield
    fsmn_triton.set_fused_fsmn(before)


def _case(
    shape: tuple[int, int, int, int, int], dtype: torch.dtype, device: str, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, int]:
    """v as the third of a fused q/k/v output (row stride 3d), a mask with padded tails, weights."""
    b, t, d, k, shift = shape
    gen = torch.Generator().manual_seed(seed)
    qkv = torch.randn(b, t, 3 * d, generator=gen).to(device, dtype)
    v = qkv[..., 2 * d :]
    lengths = torch.randint(1, t + 1, (b,), generator=gen)
    lengths[0] = t
    mask = (torch.arange(t)[None, :] < lengths[:, None])[:, :, None].to(device, dtype)
    weight = (torch.randn(d, 1, k, generator=gen) / k**0.5).to(device, dtype)
    left = (k - 1) // 2 + shift
    return v, mask, weight, left, k - 1 - left


def _reference(
    v: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, left: int, right: int
) -> torch.Tensor:
    """float32 ``conv(v * mask) + v * mask`` from the same (rounded) inputs."""
    masked = v.float() * mask.float()
    return depthwise_time_conv(masked, weight.float(), left, right) + masked


def _check_kernel(shape: tuple[int, int, int, int, int], dtype: torch.dtype, device: str) -> None:
    v, mask, weight, left, right = _case(shape, dtype, device)
    assert not v.is_contiguous()
    got = fsmn_triton.fused_masked_depthwise_conv(v, mask, weight, left, right)
    assert got.shape == v.shape and got.dtype == dtype and got.is_contiguous()
    torch.testing.assert_close(
        got.float(), _reference(v, mask, weight, left, right), rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype]
    )
    # padding never reaches a valid frame: changing padded inputs leaves valid outputs as they were
    noisy = v + (1.0 - mask) * 100.0
    again = fsmn_triton.fused_masked_depthwise_conv(noisy, mask, weight, left, right)
    valid = mask.bool().expand_as(got)
    assert torch.equal(again[valid], got[valid])


@needs_interpreter
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_kernel_matches_reference_interpreted(
    shape: tuple[int, int, int, int, int], dtype: torch.dtype
) -> None:
    _check_kernel(shape, dtype, "cpu")


@needs_interpreter
def test_kernel_rejects_mismatched_weight() -> None:
    v, mask, weight, left, right = _case(SHAPES[0], torch.float32, "cpu")
    with pytest.raises(ValueError, match="does not fit"):
        fsmn_triton.fused_masked_depthwise_conv(v, mask, weight, left + 1, right)


def test_cpu_dispatch_keeps_the_native_path(fused_switch: None) -> None:
    """On CPU the switch changes nothing: the native path's transposed (B, d, T) result, exact values."""
    fsmn_triton.set_fused_fsmn(True)
    v, mask, weight, left, right = _case(SHAPES[1], torch.bfloat16, "cpu")
    with torch.inference_mode():
        got = masked_depthwise_conv(v, mask, weight, left, right)
    assert got.transpose(1, 2).is_contiguous()
    masked = v * mask
    assert torch.equal(got, depthwise_time_conv(masked, weight, left, right) + masked)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [*SHAPES, (16, 301, 512, 11, 0), (8, 128, 512, 11, 1)])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_kernel_matches_reference_cuda(shape: tuple[int, int, int, int, int], dtype: torch.dtype) -> None:
    assert fsmn_triton.available(), "triton must be installed on the GPU machine"
    _check_kernel(shape, dtype, "cuda")


@pytest.mark.gpu
def test_dispatch_and_switch_cuda(fused_switch: None) -> None:
    """Inference in bf16 takes the kernel (contiguous result); the switch, float32 and autograd do not."""
    v, mask, weight, left, right = _case((4, 63, 256, 11, 1), torch.bfloat16, "cuda")
    with torch.inference_mode():
        fsmn_triton.set_fused_fsmn(True)
        fused = masked_depthwise_conv(v, mask, weight, left, right)
        fsmn_triton.set_fused_fsmn(False)
        native = masked_depthwise_conv(v, mask, weight, left, right)
        fsmn_triton.set_fused_fsmn(True)
        full = masked_depthwise_conv(v.float(), mask.float(), weight.float(), left, right)
    assert fused.is_contiguous() and not native.is_contiguous() and not full.is_contiguous()
    reference = _reference(v, mask, weight, left, right)
    torch.testing.assert_close(
        fused.float(), reference, rtol=TOLERANCE[torch.bfloat16], atol=TOLERANCE[torch.bfloat16]
    )
    torch.testing.assert_close(native.float(), reference, rtol=2e-2, atol=2e-2)
    w = weight.detach().clone().requires_grad_(True)
    trained = masked_depthwise_conv(v, mask, w, left, right)
    trained.float().sum().backward()
    assert w.grad is not None and not trained.is_contiguous()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_parity_encoder_with_and_without_kernel_cuda(
    parity_dir: Path, dtype: torch.dtype, fused_switch: None
) -> None:
    """The encoder output in half precision, fused or not, is as close to float32 as the native path is."""
    assert fsmn_triton.available(), "triton must be installed on the GPU machine"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    family = parity_dir / "paraformer"
    device = torch.device("cuda")
    waves = [file_samples(family / "audio" / n) for n in ("en_16k.wav", "zh_16k.wav")]

    def encode(model_dtype: torch.dtype, fused: bool) -> tuple[torch.Tensor, list[str]]:
        fsmn_triton.set_fused_fsmn(fused)
        model = load_model(family / "model", device=device, dtype=model_dtype)
        assert isinstance(model, ParaformerModel)
        feats, lengths = features(model.frontend, waves, device)
        enc = model.acoustic(feats, lengths).encoder_out.float()
        texts = [h.text for h in model.decode_batch(feats, lengths, [DecodeRequest()] * len(waves))]
        return enc, texts

    exact, exact_texts = encode(torch.float32, True)
    fused, fused_texts = encode(dtype, True)
    native, _ = encode(dtype, False)
    fused_err = (fused - exact).abs()
    native_err = (native - exact).abs()
    scale = exact.abs().max().item()
    assert fused_err.max().item() <= 0.05 * scale, (fused_err.max().item(), scale)
    assert fused_err.mean().item() <= 1.5 * native_err.mean().item() + 1e-4, (
        fused_err.mean().item(),
        native_err.mean().item(),
    )
    assert all(fused_texts), fused_texts
    assert len(fused_texts) == len(exact_texts)
