"""SAN-M encoder against FunASR's encoder output on the Paraformer parity model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from asr_engine.models.loader import load_checkpoint, read_model_dir
from asr_engine.models.sanm import SanmEncoder, parse_sanm_encoder_dims, sinusoidal_positions


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
