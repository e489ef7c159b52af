"""SenseVoice decodes a batch's log-probs a few items at a time: bounded memory, unchanged results."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import asr_engine.models.sensevoice as sensevoice
from asr_engine.models.base import DecodeRequest, Hypothesis
from asr_engine.models.loader import load_model
from asr_engine.models.sensevoice import SenseVoiceModel
from asr_engine.types import Hotword
from tests.models.conftest import features, file_samples

CPU = torch.device("cpu")
AUDIO = ["en_16k.wav", "zh_16k.wav", "en2_16k.wav", "short_0p3s_16k.wav", "en_16k.wav", "zh_16k.wav"]
# Plain greedy items, timestamps, and a hotword item (prefix beam search): every path that reads log-probs.
REQUESTS = [
    DecodeRequest(),
    DecodeRequest(language="zh", timestamps=True),
    DecodeRequest(language="en", hotwords=(Hotword(phrase="lingting"),)),
    DecodeRequest(language="zh", itn=True),
    DecodeRequest(language="auto", timestamps=True, hotwords=(Hotword(phrase="hello", boost=3.0),)),
    DecodeRequest(language="yue"),
]


@pytest.fixture(scope="module")
def model(parity_dir: Path) -> SenseVoiceModel:
    loaded = load_model(parity_dir / "sensevoice" / "model", device=CPU, dtype=torch.float32)
    assert isinstance(loaded, SenseVoiceModel)
    return loaded


@pytest.fixture(scope="module")
def batch(parity_dir: Path, model: SenseVoiceModel) -> tuple[torch.Tensor, torch.Tensor]:
    waves = [file_samples(parity_dir / "sensevoice" / "audio" / name) for name in AUDIO]
    return features(model.frontend, waves, CPU)


def _reference(model: SenseVoiceModel, feats: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
    """The whole-batch form (all B x T x V log-probs at once), decoded item by item."""
    from asr_engine.decoding.ctc import greedy_decode, prefix_beam_search

    lp, out_lengths = model.log_probs(feats, lengths, REQUESTS)
    greedy = greedy_decode(lp, out_lengths)
    hyps = []
    for i, request in enumerate(REQUESTS):
        n = int(out_lengths[i])
        ids = greedy[i]
        graph = model.context_graph(request.hotwords) if request.hotwords else None
        if graph is not None:
            ids = list(prefix_beam_search(lp[i], n, model.beam_size, graph).token_ids)
        speech = lp[i, sensevoice.PROMPT_FRAMES : n] if request.timestamps else None
        hyps.append(model._hypothesis(ids, speech))
    return hyps


@pytest.mark.parametrize("chunk_values", [1, 300_000, 1 << 40])  # one item per group, a few, the whole batch
def test_grouped_decoding_equals_the_whole_batch_form(
    model: SenseVoiceModel,
    batch: tuple[torch.Tensor, torch.Tensor],
    chunk_values: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feats, lengths = batch
    expected = _reference(model, feats, lengths)
    monkeypatch.setattr(sensevoice, "LOG_PROB_CHUNK_VALUES", chunk_values)
    got = model.decode_batch(feats, lengths, REQUESTS)
    assert got == expected
    assert any(h.words for h in got) and any(h.text for h in got)


def _largest_log_softmax_bytes(run: object) -> int:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()  # type: ignore[operator]
    sizes = [e.cpu_memory_usage for e in prof.events() if e.name == "aten::_log_softmax"]
    assert sizes, "no log-softmax seen"
    return max(sizes)


def test_log_prob_memory_does_not_grow_with_the_batch(
    model: SenseVoiceModel, batch: tuple[torch.Tensor, torch.Tensor], monkeypatch: pytest.MonkeyPatch
) -> None:
    feats, lengths = batch
    frames = int(lengths.max()) + sensevoice.PROMPT_FRAMES
    one_item = frames * model.net.dims.vocab_size * 4
    whole = _largest_log_softmax_bytes(lambda: model.log_probs(feats, lengths, REQUESTS))
    assert whole >= len(REQUESTS) * one_item  # what the whole-batch form holds
    monkeypatch.setattr(sensevoice, "LOG_PROB_CHUNK_VALUES", 2 * frames * model.net.dims.vocab_size)
    grouped = _largest_log_softmax_bytes(lambda: model.decode_batch(feats, lengths, REQUESTS))
    assert grouped <= 2 * one_item
