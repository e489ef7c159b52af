"""Post-processing of a hypothesis into a segment: spacing, tags, punctuation then ITN, word texts."""

from __future__ import annotations

import torch

from asr_engine.models.base import Hypothesis
from asr_engine.postprocess import clean_text, join_texts, load_punctuator, make_segment
from asr_engine.types import TranscribeOptions, Word

RULE = load_punctuator(None, torch.device("cpu"))


def test_tags_and_cjk_spacing_are_removed() -> None:
    assert clean_text("<|zh|><|NEUTRAL|><|Speech|><|woitn|>你 好 hello world") == "你好 hello world"


def test_itn_after_punctuation_does_not_double_the_final_stop() -> None:
    hyp = Hypothesis(token_ids=(), text="the meeting is at nine thirty a m")
    segment = make_segment(hyp, 0, 1000, TranscribeOptions(), RULE)
    assert segment.text.endswith("a.m.")
    assert not segment.text.endswith("..")
    assert segment.text_raw == hyp.text


def test_word_texts_lose_sentencepiece_boundary_marks_and_shift_by_the_segment_start() -> None:
    hyp = Hypothesis(
        token_ids=(),
        text="<|en|>the cat",
        words=(Word(text="\u2581the", start_ms=0, end_ms=100), Word(text="cat", start_ms=100, end_ms=300)),
    )
    segment = make_segment(hyp, 5000, 6000, TranscribeOptions(word_timestamps=True), RULE)
    assert [(w.text, w.start_ms, w.end_ms) for w in segment.words] == [
        ("the", 5000, 5100),
        ("cat", 5100, 5300),
    ]


def test_join_texts_spaces_only_between_non_cjk_neighbours() -> None:
    assert join_texts(["你好。", "再见。", "hello.", "world"]) == "你好。再见。 hello. world"


def test_marks_itn_splits_off_are_joined_again_in_the_transcript() -> None:
    # apply_itn writes "$25 !" (the suites' tokens); a transcript reads "$25!".
    hyp = Hypothesis(token_ids=(), text="<|en|>wow, the ticket costs twenty five dollars!")
    segment = make_segment(hyp, 0, 1000, TranscribeOptions(), RULE)
    assert segment.text == "wow, the ticket costs $25!"
