"""SenseVoiceSmall against FunASR 1.4.16's own outputs on the parity model (funasr-spec §8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from asr_engine.errors import InvalidOptionsError, ModelLoadError
from asr_engine.models.base import AsrModel, DecodeRequest
from asr_engine.models.loader import load_model, read_model_dir
from asr_engine.models.sensevoice import (
    SenseVoiceModel,
    from_model_dir,
    parse_sensevoice_dims,
    prompt_row_ids,
    strip_tags,
)
from asr_engine.types import Hotword
from tests.models.conftest import features, file_samples, load_expected

CPU = torch.device("cpu")


def _family(parity_dir: Path) -> Path:
    return parity_dir / "sensevoice"


def _model(
    parity_dir: Path, device: torch.device = CPU, dtype: torch.dtype = torch.float32
) -> SenseVoiceModel:
    model = load_model(_family(parity_dir) / "model", device=device, dtype=dtype)
    assert isinstance(model, SenseVoiceModel)
    return model


def _request(kwargs: dict[str, Any]) -> DecodeRequest:
    """FunASR generate kwargs -> our request (an unknown language is FunASR's auto)."""
    language = kwargs.get("language", "auto")
    if language not in ("auto", "zh", "en", "yue", "ja", "ko", "nospeech"):
        language = "auto"
    itn = bool(kwargs.get("use_itn", False))
    if "text_norm" in kwargs:
        itn = kwargs["text_norm"] == "withitn"
    return DecodeRequest(language=language, itn=itn, timestamps=bool(kwargs.get("output_timestamp", False)))


def _decodable_cases(parity_dir: Path) -> list[dict[str, Any]]:
    cases = load_expected(_family(parity_dir))["cases"]
    return [c for c in cases if c["error"] is None]


def _check_case(model: SenseVoiceModel, family: Path, case: dict[str, Any], device: torch.device) -> None:
    feats, lengths = features(model.frontend, [file_samples(family / case["input"])], device)
    hyp = model.decode_batch(feats, lengths, [_request(case["generate_kwargs"])])[0]
    expected = case["result"][0]
    assert hyp.text == expected["text"], case["id"]
    if "ctc_token_ids" in case:
        assert list(hyp.token_ids) == case["ctc_token_ids"], case["id"]
    if "timestamp" in expected:
        assert [[w.start_ms, w.end_ms] for w in hyp.words] == expected["timestamp"], case["id"]
        assert [w.text for w in hyp.words] == expected["words"], case["id"]
    else:
        assert hyp.words == ()


def _check_all_cases(parity_dir: Path, device: torch.device) -> int:
    model = _model(parity_dir, device)
    cases = _decodable_cases(parity_dir)
    for case in cases:
        _check_case(model, _family(parity_dir), case, device)
    return len(cases)


def test_every_funasr_case(parity_dir: Path) -> None:
    assert _check_all_cases(parity_dir, CPU) == 47


def test_tensors_match(parity_dir: Path) -> None:
    tensors = _family(parity_dir) / "expected" / "tensors_en_16k_auto_woitn"
    model = _model(parity_dir)
    prompt = np.load(tensors / "prompt_ids.npy")
    assert prompt.tolist() == prompt_row_ids(DecodeRequest())
    enc_in = torch.from_numpy(np.load(tensors / "encoder_input.npy"))
    torch.testing.assert_close(model.net.embed.weight[prompt.tolist()].detach(), enc_in[:4], rtol=0, atol=0)
    with torch.inference_mode():
        enc, _ = model.net.encoder(enc_in[None], torch.tensor([enc_in.shape[0]]))
    np.testing.assert_allclose(enc[0].numpy(), np.load(tensors / "encoder_out.npy"), atol=1e-3, rtol=0)
    lfr = torch.from_numpy(np.load(tensors / "lfr_cmvn.npy"))[None]
    lp, lengths = model.log_probs(lfr, torch.tensor([lfr.shape[1]]), [DecodeRequest()])
    assert lengths.tolist() == [lfr.shape[1] + 4]
    np.testing.assert_allclose(lp[0].numpy(), np.load(tensors / "ctc_logprobs.npy"), atol=1e-3, rtol=0)
    assert lp[0].argmax(-1).tolist() == np.load(tensors / "ctc_argmax.npy").tolist()
    hyp = model.decode_batch(lfr, torch.tensor([lfr.shape[1]]), [DecodeRequest()])[0]
    assert list(hyp.token_ids) == np.load(tensors / "token_ids.npy").tolist()
    expected_text = load_expected(_family(parity_dir))["en_16k_auto_woitn_decoded_from_tensors"]
    assert hyp.text == expected_text
    assert hyp.language == "en" and hyp.tags == ("NEUTRAL", "Speech")
    assert strip_tags(hyp.text) == expected_text.split("<|woitn|>", 1)[1]


def test_batch_of_mixed_requests_equals_singles(parity_dir: Path) -> None:
    family = _family(parity_dir)
    model = _model(parity_dir)
    by_id = {c["id"]: c for c in _decodable_cases(parity_dir)}
    picked = [
        by_id["zh_16k.wav|lang=en|itn=True"],
        by_id["en_16k.wav|language=auto,use_itn=True,output_timestamp=True"],
        by_id["short_0p3s_16k.wav|lang=zh|itn=False"],
        by_id["en2_16k.wav|lang=auto|itn=False"],
        by_id["en_16k.wav|language=yue,use_itn=False"],
    ]
    waves = [file_samples(family / c["input"]) for c in picked]
    feats, lengths = features(model.frontend, waves, CPU)
    hyps = model.decode_batch(feats, lengths, [_request(c["generate_kwargs"]) for c in picked])
    for hyp, case in zip(hyps, picked, strict=True):
        expected = case["result"][0]
        assert hyp.text == expected["text"], case["id"]
        if "timestamp" in expected:
            assert [[w.start_ms, w.end_ms] for w in hyp.words] == expected["timestamp"]


def test_languages_and_itn_select_prompt_rows() -> None:
    assert prompt_row_ids(DecodeRequest()) == [0, 1, 2, 15]
    assert prompt_row_ids(DecodeRequest(language="auto", itn=True)) == [0, 1, 2, 14]
    rows = {lang: prompt_row_ids(DecodeRequest(language=lang))[0] for lang in ("zh", "en", "yue", "ja", "ko")}
    assert rows == {"zh": 3, "en": 4, "yue": 7, "ja": 11, "ko": 12}
    assert prompt_row_ids(DecodeRequest(language="nospeech"))[0] == 13
    with pytest.raises(InvalidOptionsError) as err:
        prompt_row_ids(DecodeRequest(language="xx-unknown"))
    assert err.value.field == "language" and "'xx-unknown'" in str(err.value) and "yue" in str(err.value)


def test_unknown_language_is_rejected_by_decode_batch(parity_dir: Path) -> None:
    model = _model(parity_dir)
    feats, lengths = features(model.frontend, [np.zeros(16000, dtype=np.float32)], CPU)
    with pytest.raises(InvalidOptionsError):
        model.decode_batch(feats, lengths, [DecodeRequest(language="fr")])


def test_ban_emo_unk_looks_the_tag_up(parity_dir: Path) -> None:
    """FunASR fails here (hard-coded id 25009); we ban the vocabulary's own <|EMO_UNKNOWN|> column."""
    family = _family(parity_dir)
    failing = next(c for c in load_expected(family)["cases"] if c["generate_kwargs"].get("ban_emo_unk"))
    assert "IndexError" in failing["error"]
    model = from_model_dir(
        read_model_dir(family / "model"), device=CPU, dtype=torch.float32, ban_emo_unk=True
    )
    assert model.banned_ids == (model.pieces.piece_to_id("<|EMO_UNKNOWN|>"),) == (16,)
    feats, lengths = features(model.frontend, [file_samples(family / failing["input"])], CPU)
    lp, _ = model.log_probs(feats, lengths, [_request(failing["generate_kwargs"])])
    assert torch.isneginf(lp[0, :, 16]).all() and torch.isfinite(lp[0, :, 17]).all()
    plain = next(c for c in load_expected(family)["cases"] if c["id"] == "en_16k.wav|lang=auto|itn=False")
    hyp = model.decode_batch(feats, lengths, [_request(failing["generate_kwargs"])])[0]
    assert hyp.text == plain["result"][0]["text"]  # the tag was not emitted anyway


def test_empty_input_decodes_the_prompt_frames_only(parity_dir: Path) -> None:
    model = _model(parity_dir)
    feats = torch.zeros(2, 0, 560)
    hyps = model.decode_batch(feats, torch.tensor([0, 0]), [DecodeRequest(timestamps=True), DecodeRequest()])
    lp, lengths = model.log_probs(feats, torch.tensor([0, 0]), [DecodeRequest(), DecodeRequest()])
    assert lengths.tolist() == [4, 4] and lp.shape[1] == 4
    assert hyps[0].words == ()
    assert hyps[1].text == model.pieces.DecodeIds(list(hyps[1].token_ids))


def test_model_facts_and_strict_loading(parity_dir: Path, tmp_path: Path) -> None:
    model = _model(parity_dir)
    assert isinstance(model, AsrModel)
    assert (model.family, model.hotword_mode, model.rich_tags) == ("sensevoice", "context_graph", True)
    assert model.frontend.feature_dim == 560
    dims = parse_sensevoice_dims(
        read_model_dir(_family(parity_dir) / "model").config, vocab_size=320, input_size=560
    )
    assert (dims.encoder.output_size, dims.encoder.num_blocks, dims.encoder.tp_blocks) == (64, 3, 2)
    assert dims.encoder.layer_norm_eps == 1e-5
    # a checkpoint without the prompt embeddings must not load
    src = _family(parity_dir) / "model"
    for name in ("config.yaml", "configuration.json", "am.mvn", "chn_jpn_yue_eng_ko_spectok.bpe.model"):
        (tmp_path / name).write_bytes((src / name).read_bytes())
    state = torch.load(src / "model.pt", map_location="cpu", weights_only=True)
    del state["embed.weight"]
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(ModelLoadError, match=r"embed\.weight"):
        load_model(tmp_path, device=CPU)
    meta = json.loads((src / "configuration.json").read_text(encoding="utf-8"))
    assert meta["file_path_metas"]["tokenizer_conf"]["bpemodel"] == "chn_jpn_yue_eng_ko_spectok.bpe.model"


# ------------------------------------------------------------------------------------------ hotwords


def _en_feats(parity_dir: Path, model: SenseVoiceModel, copies: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    wave = file_samples(_family(parity_dir) / "audio" / "en_16k.wav")
    return features(model.frontend, [wave] * copies, CPU)


def test_a_boosted_hotword_appears(parity_dir: Path) -> None:
    model = _model(parity_dir)
    feats, lengths = _en_feats(parity_dir, model, 4)
    greedy = model.decode_batch(feats[:1], lengths[:1], [DecodeRequest()])[0].text
    assert "谢谢" not in greedy and "数据" not in greedy
    boosted = model.decode_batch(
        feats,
        lengths,
        [
            DecodeRequest(hotwords=(Hotword(phrase="谢谢"),)),  # default boost 2.0 per token
            DecodeRequest(hotwords=(Hotword(phrase="数据", boost=3.0),)),
            DecodeRequest(hotwords=(Hotword(phrase="谢谢", boost=1.0),)),  # too weak here
            DecodeRequest(hotwords=(Hotword(phrase="谢谢"),), timestamps=True),
        ],
    )
    assert boosted[3].text == boosted[0].text
    assert "谢谢" in [w.text for w in boosted[3].words]
    assert "谢谢" in boosted[0].text and boosted[0].text != greedy
    assert "数据" in boosted[1].text
    assert boosted[2].text == greedy
    # the rest of the text stays: only a short stretch changes
    assert strip_tags(boosted[0].text).replace("谢谢", "") == strip_tags(greedy)


def test_no_or_zero_boost_hotwords_leave_greedy_untouched(parity_dir: Path) -> None:
    model = _model(parity_dir)
    feats, lengths = _en_feats(parity_dir, model, 2)
    greedy = model.decode_batch(feats[:1], lengths[:1], [DecodeRequest()])[0]
    same = model.decode_batch(
        feats,
        lengths,
        [
            DecodeRequest(hotwords=(Hotword(phrase="谢谢", boost=0.0),)),
            DecodeRequest(hotwords=(Hotword(phrase="<|zh|>"), Hotword(phrase="€€"))),  # nothing usable
        ],
    )
    assert [h.token_ids for h in same] == [greedy.token_ids] * 2


def test_hotword_token_sequences(parity_dir: Path) -> None:
    model = _model(parity_dir)
    sp = model.pieces
    # after a space ("▁week") anywhere; unspaced ("w" "eek") only right after the tag prefix, where the
    # text starts (elsewhere it would match inside other words)
    assert model.hotword_token_ids("week") == [
        (sp.piece_to_id("▁week"),),
        (sp.piece_to_id("<|woitn|>"), *sp.EncodeAsIds("week")),
        (sp.piece_to_id("<|withitn|>"), *sp.EncodeAsIds("week")),
    ]
    assert (sp.piece_to_id("谢谢"),) in model.hotword_token_ids(" 谢谢 ")
    assert model.hotword_token_ids("<|HAPPY|>") == []
    assert model.hotword_token_ids("   ") == []
    assert model.context_graph((Hotword(phrase="week", boost=0.0),)) is None
    graph = model.context_graph((Hotword(phrase="week"),))
    assert graph is not None and graph is model.context_graph((Hotword(phrase="week"),))  # cached


# ------------------------------------------------------------------------------------------ GPU


@pytest.mark.gpu
def test_every_funasr_case_on_cuda(parity_dir: Path) -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    assert _check_all_cases(parity_dir, torch.device("cuda")) == 47


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_on_cuda(parity_dir: Path, dtype: torch.dtype) -> None:
    device = torch.device("cuda")
    model = _model(parity_dir, device, dtype)
    family = _family(parity_dir)
    case = next(c for c in _decodable_cases(parity_dir) if c["id"] == "en_16k.wav|lang=auto|itn=False")
    feats, lengths = features(model.frontend, [file_samples(family / case["input"])], device)
    lp, _ = model.log_probs(feats, lengths, [DecodeRequest()])
    assert lp.dtype == torch.float32 and torch.isfinite(lp).all()
    reference = _model(parity_dir, device).log_probs(feats, lengths, [DecodeRequest()])[0]
    assert (lp.exp() - reference.exp()).abs().max().item() < 0.1
    hyp = model.decode_batch(feats, lengths, [DecodeRequest(timestamps=True)])[0]
    assert hyp.text.startswith("<|en|><|NEUTRAL|><|Speech|><|woitn|>")
    assert hyp.words
