"""SAN-M encoder against FunASR's encoder output on the Paraformer parity model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from asr_engine.models.loader import load_checkpoint, read_model_dir
from asr_engine.models.sanm import (
    SanmEncoder,
    masked_depthwise_conv,
    parse_sanm_encoder_dims,
    sinusoidal_positions,
)


def _encoder(parity_dir: Path) -> SanmEncoder:
    model_dir = read_model_dir(parity_dir / "paraformer" / "model")
    dims = parse_sanm_encoder_dims(model_dir.config["encoder_conf"], input_size=560)
    enc = SanmEncoder(dims).eval()
    sd = load_checkpoint(model_dir.require("checkpoint"))
    enc.load_state_dict({k[len("encoder.") :]: v for k, v in sd.items() if k.startswith("encoder.")})
    return enc


def test_positions_are_sines_then_cosines_from_one() -> None:
    pe = sinusoidal_positions(3, 8)
    inv = np.exp(-np.arange(4) * np.log(10000.0) / 3)
    np.testing.assert_allclose(pe[0, :4].numpy(), np.sin(inv), atol=1e-6)
    np.testing.assert_allclose(pe[2, 4:].numpy(), np.cos(3 * inv), atol=1e-6)


def test_encoder_matches_funasr(parity_dir: Path) -> None:
    tensors = parity_dir / "paraformer" / "expected" / "tensors_en_16k"
    feats = torch.from_numpy(np.load(tensors / "lfr_cmvn.npy"))[None]
    expected = np.load(tensors / "encoder_out.npy")
    enc = _encoder(parity_dir)
    with torch.no_grad():
        out, _ = enc(feats, torch.tensor([feats.shape[1]]))
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-3)


def test_padding_does_not_change_valid_frames_nor_give_nan(parity_dir: Path) -> None:
    tensors = parity_dir / "paraformer" / "expected" / "tensors_en_16k"
    feats = torch.from_numpy(np.load(tensors / "lfr_cmvn.npy"))
    enc = _encoder(parity_dir)
    t = feats.shape[0]
    batch = torch.zeros(2, t + 9, feats.shape[1])
    batch[0, :t] = feats
    batch[1, :20] = feats[:20]
    with torch.no_grad():
        out, _ = enc(batch, torch.tensor([t, 20]))
        single, _ = enc(feats[None, :20], torch.tensor([20]))
    assert torch.isfinite(out).all()
    np.testing.assert_allclose(out[0, :t].numpy(), np.load(tensors / "encoder_out.npy"), atol=1e-3)
    np.testing.assert_allclose(out[1, :20].numpy(), single[0].numpy(), atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("left", "right"), [(5, 5), (10, 0), (0, 10), (7, 3)])
def test_fsmn_conv_equals_funasr_form_bit_for_bit(dtype: torch.dtype, left: int, right: int) -> None:
    """The one-pass masked FSMN equals FunASR's ``conv(pad((v * m).T)).T + v * m`` exactly."""
    generator = torch.Generator().manual_seed(left * 16 + right)
    qkv = torch.randn(3, 37, 3 * 64, generator=generator).to(dtype)
    v = qkv.split(64, dim=-1)[2]  # a strided view, as the attention's split gives it
    mask = (torch.rand(3, 37, 1, generator=generator) > 0.3).to(dtype)
    weight = torch.randn(64, 1, left + right + 1, generator=generator).to(dtype)
    x = v * mask
    expected = F.conv1d(F.pad(x.transpose(1, 2), (left, right)), weight, groups=64).transpose(1, 2) + x
    with torch.inference_mode():
        fast = masked_depthwise_conv(v, mask, weight, left, right)
    assert torch.equal(fast, expected)
    trained = v.detach().clone().requires_grad_()
    out = masked_depthwise_conv(trained, mask, weight, left, right)
    assert torch.equal(out.detach(), expected)
    out.sum().backward()  # the training form keeps a derivative
    assert trained.grad is not None and trained.grad.shape == v.shape
    # The result is (B, d, T) in memory; added to a contiguous (B, T, d) tensor the sum is contiguous.
    assert (torch.zeros_like(x) + fast).is_contiguous()
