"""CT-punc text handling against every FunASR parity case, batching, jieba isolation, rule fallback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jieba
import pytest
import torch

from asr_engine.models.loader import load_model
from asr_engine.text.punctuation import Punctuator, RulePunctuator, split_mini_sentences, split_words

CPU = torch.device("cpu")
_EXPECTED = Path(__file__).resolve().parents[2].parent / "shared" / "parity" / "ct_punc" / "expected"


def _cases() -> list[dict[str, Any]]:
    path = _EXPECTED / "expected.json"
    return json.loads(path.read_text())["cases"] if path.is_file() else []


@pytest.fixture(scope="module")
def punctuator(parity_dir: Path) -> Punctuator:
    model = load_model(parity_dir / "ct_punc" / "model", device=CPU)
    assert isinstance(model, Punctuator)
    return model


def test_case_list_is_complete() -> None:
    assert len(_cases()) == 11


@pytest.mark.parametrize("case", _cases(), ids=[c["id"] for c in _cases()])
def test_case_matches_funasr(case: dict[str, Any], punctuator: Punctuator) -> None:
    split_size = (case.get("generate_kwargs") or {}).get("split_size")
    result = punctuator.punctuate(case["input"], split_size=split_size)
    expected = case["result"][0]
    assert result.text == expected["text"]
    assert (None if result.punc_ids is None else list(result.punc_ids)) == expected["punc_array"]
    if "split_words" in case:
        words = split_words(case["input"], punctuator.jieba)
        assert words == case["split_words"]
        assert [punctuator.vocab.get(w, punctuator.unk_id) for w in words] == case["token_ids"]
        pieces = split_mini_sentences(words, 20) if words else []
        assert [len(p) for p in pieces] == case["mini_sentences_split_size_20"]


def test_batch_equals_one_by_one(punctuator: Punctuator) -> None:
    texts = [c["input"] for c in _cases()]
    batched = punctuator.punctuate_batch(texts, split_size=8)
    assert batched == [punctuator.punctuate(t, split_size=8) for t in texts]


def test_private_jieba_leaves_the_global_dictionary_alone(punctuator: Punctuator) -> None:
    assert "语音实验室" in list(punctuator.jieba.cut("语音实验室", HMM=False))
    assert "语音实验室" not in list(jieba.cut("语音实验室", HMM=False))


def test_split_without_jieba() -> None:
    assert split_words("我们今天讨论 speech,recognition的三个 ok") == [
        "我", "们", "今", "天", "讨", "论", "speech,recognition", "的", "三", "个", "ok",
    ]  # fmt: skip


def test_rule_punctuator() -> None:
    rule = RulePunctuator()
    assert rule.punctuate("hello world").text == "hello world."
    assert rule.punctuate("今天天气很好").text == "今天天气很好。"
    assert rule.punctuate("今天天气很好，").text == "今天天气很好。"
    assert rule.punctuate("is it?").text == "is it?"
    assert rule.punctuate("   ").text == ""
    assert rule.punctuate_batch(["a", "b。"]) == [rule.punctuate("a"), rule.punctuate("b。")]
