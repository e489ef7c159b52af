"""SenseVoice rich tags: FunASR's rich_transcription_postprocess on its own examples, and our helpers."""

from __future__ import annotations

from pathlib import Path

from asr_engine.text.rich import (
    EMOTION_EMOJI,
    EVENT_EMOJI,
    TAG_EMOJI,
    RichTags,
    parse_tags,
    rich_transcription_postprocess,
    strip_tags,
)
from tests.models.conftest import load_expected


def test_funasr_examples(parity_dir: Path) -> None:
    examples = load_expected(parity_dir / "sensevoice")["rich_transcription_postprocess_examples"]
    assert len(examples) >= 10
    for example in examples:
        assert rich_transcription_postprocess(example["input"]) == example["output"], example["input"]


def test_funasr_outputs_of_every_decoded_case(parity_dir: Path) -> None:
    cases = load_expected(parity_dir / "sensevoice")["cases"]
    checked = 0
    for case in cases:
        if case["error"] is None and "rich_transcription_postprocess" in case:
            got = rich_transcription_postprocess(case["result"][0]["text"])
            assert got == case["rich_transcription_postprocess"], case["id"]
            checked += 1
    assert checked >= 40


def test_rules_not_in_the_examples() -> None:
    # several events: each present one is put in front in table order, so the last one leads
    assert rich_transcription_postprocess("<|en|><|NEUTRAL|><|BGM|><|Applause|>hi") == "👏🎼hi"
    # the most frequent emotion wins; a tie keeps the earlier choice
    assert rich_transcription_postprocess("<|en|><|SAD|><|SAD|><|HAPPY|>x") == "x😔"
    assert rich_transcription_postprocess("<|en|><|SAD|><|HAPPY|>x") == "x😊"
    # spaces around emojis go
    assert rich_transcription_postprocess("<|en|><|HAPPY|><|BGM|> a b ") == "🎼a b😊"
    # FunASR raises IndexError when a later part is only the repeated event emoji; we drop it
    assert rich_transcription_postprocess("<|en|><|BGM|>a<|en|><|BGM|>") == "🎼a"
    assert rich_transcription_postprocess("") == ""


def test_tables() -> None:
    assert set(EMOTION_EMOJI) == {"HAPPY", "SAD", "ANGRY", "NEUTRAL", "FEARFUL", "DISGUSTED", "SURPRISED"}
    assert EVENT_EMOJI["Cough"] == "🤧" and TAG_EMOJI["<|Cough|>"] == "😷"
    assert next(iter(TAG_EMOJI)) == "<|nospeech|><|Event_UNK|>"


def test_strip_and_parse_tags() -> None:
    text = "<|en|><|NEUTRAL|><|Speech|><|woitn|> hello <|zh|><|HAPPY|><|Speech|>你好"
    assert strip_tags(text) == "hello 你好"
    assert parse_tags(text) == RichTags(language="en", tags=("NEUTRAL", "Speech", "HAPPY"))
    assert parse_tags("<|nospeech|><|Event_UNK|>") == RichTags(language="", tags=("Event_UNK",))
    assert parse_tags("plain") == RichTags()
    assert strip_tags("a <|made up|> b") == "a  b"
