"""SeACo-Paraformer against FunASR 1.4.16's outputs on the parity model (funasr-spec §7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from asr_engine.models.base import DecodeRequest
from asr_engine.models.loader import load_model
from asr_engine.models.seaco_paraformer import (
    SeacoParaformerModel,
    hotword_token_ids,
    hotwords_from_funasr_text,
)
from asr_engine.types import Hotword
from tests.models.conftest import features, file_samples, load_expected


def _family(parity_dir: Path) -> Path:
    return parity_dir / "seaco_paraformer"


def _model(parity_dir: Path, device: torch.device) -> SeacoParaformerModel:
    model = load_model(_family(parity_dir) / "model", device=device, dtype=torch.float32)
    assert isinstance(model, SeacoParaformerModel)
    return model


def _hotwords(family: Path, arg: str | None) -> tuple[Hotword, ...]:
    if not arg:
        return ()
    if arg.endswith(".txt"):
        return hotwords_from_funasr_text((family / arg).read_text(encoding="utf-8"), is_file=True)
    return hotwords_from_funasr_text(arg, is_file=False)


def _cases(parity_dir: Path) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = load_expected(_family(parity_dir))["cases"]
    return cases


def test_hotword_token_ids(parity_dir: Path) -> None:
    family = _family(parity_dir)
    model = _model(parity_dir, torch.device("cpu"))
    for name, entry in load_expected(family)["hotword_token_ids"].items():
        hws = _hotwords(family, entry["hotword_arg"])
        if entry["ids"] is None:
            assert hws == (), name
            continue
        ids = [hotword_token_ids(h.phrase, model.vocabulary, model.seg_dict) for h in hws]
        assert [*ids, [1]] == entry["ids"], name


def _check_cases(parity_dir: Path, device: torch.device) -> None:
    family = _family(parity_dir)
    model = _model(parity_dir, device)
    for case in _cases(parity_dir):
        assert case["error"] is None
        hws = _hotwords(family, case["generate_kwargs"].get("hotword"))
        feats, lengths = features(model.frontend, [file_samples(family / case["input"])], device)
        with_ts, without_ts = model.decode_batch(
            torch.cat([feats, feats]),
            torch.cat([lengths, lengths]),
            [DecodeRequest(timestamps=True, hotwords=hws), DecodeRequest(hotwords=hws)],
        )
        expected = case["result"][0]
        assert list(with_ts.token_ids) == case["token_ids"], case["id"]
        assert with_ts.text == expected["text"], case["id"]
        assert [[w.start_ms, w.end_ms] for w in with_ts.words] == expected["timestamp"], case["id"]
        assert without_ts.text == expected["text"] and without_ts.words == ()


def test_cases(parity_dir: Path) -> None:
    _check_cases(parity_dir, torch.device("cpu"))


def test_items_with_different_hotwords_in_one_batch(parity_dir: Path) -> None:
    family = _family(parity_dir)
    model = _model(parity_dir, torch.device("cpu"))
    wanted = {
        "en_16k.wav|hotword=mixed",
        "zh_16k.wav|hotword=none",
        "zh_16k.wav|hotword=64_words_asf",
        "en_16k.wav|hotword=zh_two",
    }
    cases = [c for c in _cases(parity_dir) if c["id"] in wanted]
    waves = [file_samples(family / c["input"]) for c in cases]
    feats, lengths = features(model.frontend, waves, torch.device("cpu"))
    requests = [
        DecodeRequest(timestamps=True, hotwords=_hotwords(family, c["generate_kwargs"].get("hotword")))
        for c in cases
    ]
    for case, hyp in zip(cases, model.decode_batch(feats, lengths, requests), strict=True):
        assert hyp.text == case["result"][0]["text"], case["id"]
        assert [[w.start_ms, w.end_ms] for w in hyp.words] == case["result"][0]["timestamp"], case["id"]


def test_intermediate_tensors(parity_dir: Path) -> None:
    tensors = _family(parity_dir) / "expected" / "tensors_en_16k"
    model = _model(parity_dir, torch.device("cpu"))
    feats = torch.from_numpy(np.load(tensors / "lfr_cmvn.npy"))[None]
    ac = model.acoustic(feats, torch.tensor([feats.shape[1]]))
    np.testing.assert_allclose(ac.encoder_out[0].numpy(), np.load(tensors / "encoder_out.npy"), atol=1e-3)
    np.testing.assert_allclose(ac.alphas[0].numpy(), np.load(tensors / "cif_alphas.npy"), atol=1e-5)
    np.testing.assert_allclose(ac.fires[0].numpy(), np.load(tensors / "cif_peaks.npy"), atol=1e-5)
    np.testing.assert_allclose(ac.embeddings[0].numpy(), np.load(tensors / "acoustic_embeds.npy"), atol=1e-3)
    logprobs, _ = model.decoder_logprobs(ac)
    expected_lp = np.load(tensors / "decoder_logprobs_no_hotword.npy")
    np.testing.assert_allclose(logprobs[0].numpy(), expected_lp, atol=1e-3)
    ids = np.load(tensors / "hotword_ids_padded.npy")
    lists = [[int(t) for t in row if t != 0] for row in ids]
    with torch.inference_mode():
        hw = model.hotword_embeddings(lists)
    np.testing.assert_allclose(hw.numpy(), np.load(tensors / "hotword_embeddings.npy"), atol=1e-3)
    np.testing.assert_allclose(
        model._timestamp_alphas(ac)[0].numpy(), np.load(tensors / "ts_us_alphas.npy"), atol=1e-5
    )


def test_funasr_text_hotword_forms() -> None:
    assert hotwords_from_funasr_text(" 公园  散步\n", is_file=False) == (
        Hotword(phrase="公园"),
        Hotword(phrase="散步"),
    )
    assert hotwords_from_funasr_text("weekly  meeting\n\n北京\n", is_file=True) == (
        Hotword(phrase="weekly meeting"),
        Hotword(phrase="北京"),
    )


@pytest.mark.gpu
def test_cases_cuda(parity_dir: Path) -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    _check_cases(parity_dir, torch.device("cuda"))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_runs_cuda(parity_dir: Path, dtype: torch.dtype) -> None:
    family = _family(parity_dir)
    model = load_model(family / "model", device=torch.device("cuda"), dtype=dtype)
    assert isinstance(model, SeacoParaformerModel)
    waves = [file_samples(family / "audio" / n) for n in ("en_16k.wav", "zh_16k.wav", "long_16k.wav")]
    feats, lengths = features(model.frontend, waves, torch.device("cuda"))
    hws = hotwords_from_funasr_text("公园 散步 stella", is_file=False)
    hyps = model.decode_batch(feats, lengths, [DecodeRequest(timestamps=True, hotwords=hws)] * 3)
    assert all(h.text for h in hyps)
    assert all(len(h.words) == len(h.text.split(" ")) for h in hyps)
