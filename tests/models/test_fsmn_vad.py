"""FSMN-VAD network: FunASR's stored frame scores, chunked scoring equal to one pass, strict keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from asr_engine.errors import ModelLoadError
from asr_engine.models.fsmn_vad import FsmnVadNet, parse_fsmn_dims


@pytest.fixture(scope="module")
def net(parity_dir: Path) -> FsmnVadNet:
    model_dir = parity_dir / "fsmn_vad" / "model"
    config = yaml.safe_load((model_dir / "config.yaml").read_text())
    module = FsmnVadNet(parse_fsmn_dims(config["encoder_conf"]))
    state = torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True)
    module.load_state_dict(state, strict=True)
    return module.eval()


@pytest.fixture(scope="module")
def tensors(parity_dir: Path) -> Path:
    return parity_dir / "fsmn_vad" / "expected" / "tensors"


def test_scores_match_funasr(net: FsmnVadNet, tensors: Path) -> None:
    feats = torch.from_numpy(np.load(tensors / "en_16k_lfr_cmvn.npy"))[None]
    expected = np.load(tensors / "en_16k_scores.npy")
    with torch.no_grad():
        probs, _ = net(feats)
    assert probs.shape == (1, 376, 248)
    np.testing.assert_allclose(probs[0].numpy(), expected, atol=1e-5, rtol=0)


def test_chunked_scoring_equals_one_pass(net: FsmnVadNet, tensors: Path) -> None:
    """The causal memory carried between chunks makes chunking exact (chunks shorter than lorder too)."""
    feats = torch.from_numpy(np.load(tensors / "en_16k_lfr_cmvn.npy"))[None]
    with torch.no_grad():
        whole, _ = net(feats)
        state = None
        parts = []
        for start in range(0, feats.shape[1], 7):
            out, state = net(feats[:, start : start + 7], state)
            parts.append(out)
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, atol=1e-6, rtol=0)


def test_batch_items_are_independent(net: FsmnVadNet, tensors: Path) -> None:
    feats = torch.from_numpy(np.load(tensors / "en_16k_lfr_cmvn.npy"))
    batch = torch.stack([feats, feats.flip(0)])
    with torch.no_grad():
        both, _ = net(batch)
        first, _ = net(feats[None])
    torch.testing.assert_close(both[:1], first, atol=1e-6, rtol=0)


def test_lookahead_models_are_rejected() -> None:
    conf = {
        "input_dim": 400, "input_affine_dim": 32, "fsmn_layers": 2, "linear_dim": 48, "proj_dim": 24,
        "lorder": 20, "rorder": 1, "lstride": 1, "output_affine_dim": 32, "output_dim": 248,
    }  # fmt: skip
    with pytest.raises(ModelLoadError, match="rorder"):
        parse_fsmn_dims(conf)
