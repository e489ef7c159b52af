"""CT-Transformer punctuation network: FunASR's stored logits, strict loading, padding independence."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from asr_engine.errors import ModelLoadError
from asr_engine.models.loader import load_model
from asr_engine.text.punctuation import Punctuator

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def punctuator(parity_dir: Path) -> Punctuator:
    model = load_model(parity_dir / "ct_punc" / "model", device=CPU)
    assert isinstance(model, Punctuator)
    return model


def test_logits_match_funasr(punctuator: Punctuator, parity_dir: Path) -> None:
    tensors = parity_dir / "ct_punc" / "expected" / "tensors"
    ids = torch.from_numpy(np.load(tensors / "text_2_token_ids.npy"))
    expected = np.load(tensors / "text_2_logits.npy")
    with torch.inference_mode():
        logits = punctuator.net(ids[None], torch.tensor([ids.numel()]))
    np.testing.assert_allclose(logits[0].numpy(), expected, atol=1e-4, rtol=0)


def test_padding_does_not_change_logits(punctuator: Punctuator) -> None:
    ids = torch.tensor([[5, 17, 30, 42, 77, 0, 0, 0], [8, 9, 10, 11, 12, 13, 14, 15]])
    with torch.inference_mode():
        both = punctuator.net(ids, torch.tensor([5, 8]))
        alone = punctuator.net(ids[:1, :5], torch.tensor([5]))
    torch.testing.assert_close(both[:1, :5], alone, atol=1e-5, rtol=0)


def test_wrong_checkpoint_fails_loudly(parity_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "ct_punc"
    shutil.copytree(parity_dir / "ct_punc" / "model", broken)
    state = torch.load(broken / "model.pt", weights_only=True)
    del state["decoder.bias"]
    torch.save(state, broken / "model.pt")
    with pytest.raises(ModelLoadError, match=r"decoder\.bias"):
        load_model(broken, device=CPU)
