"""The sync-free CIF and acoustic stage (what a CUDA graph holds) against the eager ones, bit for bit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from asr_engine.decoding.cif import add_tail, cif_fire, cif_fire_padded
from asr_engine.models.base import DecodeRequest
from asr_engine.models.loader import load_model
from asr_engine.models.paraformer import ParaformerModel, token_bucket
from tests.models.conftest import features, file_samples


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_padded_cif_equals_cif_fire(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    b, t, d = 5, 97, 16
    hidden = torch.randn(b, t, d, generator=generator)
    alphas = torch.rand(b, t, generator=generator) * 0.6
    lengths = torch.tensor([97, 60, 1, 0, 33])
    alphas = alphas * (torch.arange(t)[None, :] < lengths[:, None])
    h, a = add_tail(hidden, alphas, lengths, 0.45)
    emb, counts, fires = cif_fire(h, a)
    padded, counts_p, fires_p = cif_fire_padded(h, a)
    assert padded.shape == (b, t + 1, d)
    assert torch.equal(counts, counts_p) and torch.equal(fires, fires_p)
    n = emb.shape[1]
    assert torch.equal(padded[:, :n], emb)  # the same float operations: identical bits
    assert not padded[:, n:].any()
    for i, count in enumerate(counts.tolist()):
        assert not padded[i, count:].any()


def test_padded_cif_without_fires_is_all_zero() -> None:
    hidden = torch.randn(2, 10, 4)
    emb, counts, _ = cif_fire_padded(hidden, torch.full((2, 10), 0.05))
    assert counts.tolist() == [0, 0] and not emb.any()


def _model(parity_dir: Path) -> ParaformerModel:
    model = load_model(parity_dir / "paraformer" / "model", device=torch.device("cpu"), dtype=torch.float32)
    assert isinstance(model, ParaformerModel)
    return model


def test_static_stage_gives_decode_batch_results(parity_dir: Path) -> None:
    """acoustic_static + argmax_ids + hypotheses (the graph path, run eagerly) == decode_batch.

    The batch is padded as the graph runner pads it: two extra items of length 0 and 16 extra frames.
    """
    model = _model(parity_dir)
    family = parity_dir / "paraformer"
    waves = [file_samples(family / "audio" / n) for n in ("en_16k.wav", "zh_16k.wav", "en2_16k.wav")]
    feats, lengths = features(model.frontend, waves, torch.device("cpu"))
    requests = [DecodeRequest(timestamps=True), DecodeRequest(), DecodeRequest(timestamps=True)]
    expected = model.decode_batch(feats, lengths, requests)

    padded = torch.nn.functional.pad(feats, (0, 0, 0, 16, 0, 2))
    padded_lengths = torch.cat([lengths, torch.zeros(2, dtype=lengths.dtype)])
    ac = model.acoustic_static(padded, padded_lengths)
    assert ac.embeddings.shape[1] == padded.shape[1] + 1
    counts, frames = torch.stack([ac.token_num[:3], ac.lengths[:3]]).tolist()
    assert ac.token_num[3:].tolist() == [0, 0]
    ids = model.argmax_ids(ac, token_bucket(max(counts)))[:3]
    got = model.hypotheses(ac, ids, counts, frames, requests)
    assert got == expected
    eager = model.acoustic(feats, lengths)
    same_shape = model.acoustic_static(feats, lengths)
    n = eager.embeddings.shape[1]
    assert torch.equal(same_shape.embeddings[:, :n], eager.embeddings)
    assert torch.equal(same_shape.fires, eager.fires) and torch.equal(same_shape.alphas, eager.alphas)
    # Other shapes may round matrix products differently in the last bits, nothing more.
    torch.testing.assert_close(ac.embeddings[:3, :n], eager.embeddings, atol=1e-4, rtol=1e-4)


def test_token_bucket_rounds_up_to_eight() -> None:
    assert [token_bucket(c) for c in (0, 1, 8, 9, 16, 17)] == [1, 8, 8, 16, 16, 24]
