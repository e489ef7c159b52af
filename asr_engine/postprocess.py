"""From a model's raw hypothesis to a finished segment: tags off, spacing, punctuation, then ITN.

Punctuation runs before ITN so the punctuation model sees the spoken form it was trained on; ITN then
rewrites numbers inside the punctuated text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from asr_engine.models.base import Hypothesis
from asr_engine.text.itn import apply_itn, attach_punctuation
from asr_engine.text.rich import strip_tags
from asr_engine.types import Segment, TranscribeOptions, Word

__all__ = [
    "Punctuation",
    "clean_text",
    "guess_language",
    "join_texts",
    "load_punctuator",
    "make_segment",
]

log = logging.getLogger(__name__)

_CJK = r"\u3400-\u9fff\uf900-\ufaff"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
_HAS_CJK = re.compile(rf"[{_CJK}]")
_DOUBLE_STOP = re.compile(r"(?<=[A-Za-z]\.)\.$")
_PIECE_BOUNDARY = "\u2581"
_WIDE = re.compile(rf"[{_CJK}\u3000-\u303f\uff00-\uffef]")


class Punctuation(Protocol):
    """Adds punctuation to one segment's text."""

    kind: str

    def apply(self, text: str, language: str) -> str: ...


class _PunctuationStep:
    """Either a CT-Transformer model from a FunASR directory or the rule-based sentence-final mark."""

    def __init__(self, punctuator: Any, kind: str) -> None:
        self._punctuator = punctuator
        self.kind = kind

    def apply(self, text: str, language: str) -> str:
        if not text.strip():
            return text
        return str(self._punctuator.punctuate(text).text).strip()


def load_punctuator(model_dir: Path | None, device: torch.device) -> Punctuation:
    """CT-Transformer from ``model_dir`` if given, else the rule-based fallback."""
    if model_dir is None:
        from asr_engine.text.punctuation import RulePunctuator

        return _PunctuationStep(RulePunctuator(), "rule")
    from asr_engine.models.loader import load_model

    return _PunctuationStep(load_model(model_dir, device=device, dtype=torch.float32), "ct-transformer")


def clean_text(raw: str) -> str:
    """Drop rich tags and the spaces FunASR puts between CJK characters."""
    text = strip_tags(raw)
    text = _SPACE_BETWEEN_CJK.sub("", text)
    return " ".join(text.split())


def guess_language(text: str) -> str:
    return "zh" if _HAS_CJK.search(text) else "en"


def make_segment(
    hypothesis: Hypothesis,
    start_ms: int,
    end_ms: int,
    options: TranscribeOptions,
    punctuation: Punctuation,
) -> Segment:
    """Build the finished segment; ``start_ms``/``end_ms`` place it in the whole recording."""
    plain = clean_text(hypothesis.text)
    language = (
        hypothesis.language
        or (options.language if options.language not in (None, "", "auto") else "")
        or (guess_language(plain) if plain else "")
    )
    text = plain
    if text and options.punctuation:
        text = punctuation.apply(text, language)
    if text and options.itn:
        # ITN writes marks next to a rewrite as separate tokens (the suites' "20 !"); a transcript joins them.
        text = attach_punctuation(apply_itn(text, language or guess_language(text)))
        # ITN may end the text with an abbreviation's period ("a.m.") right before the sentence's own.
        text = _DOUBLE_STOP.sub("", text)
    words: tuple[Word, ...] = ()
    if options.word_timestamps:
        words = tuple(
            Word(
                # A sentencepiece word-boundary mark is never part of the word itself.
                text=w.text.strip(_PIECE_BOUNDARY),
                start_ms=max(0, w.start_ms + start_ms),
                end_ms=max(0, w.end_ms + start_ms),
            )
            for w in hypothesis.words
            if strip_tags(w.text).strip(_PIECE_BOUNDARY)
        )
    return Segment(
        start_ms=start_ms,
        end_ms=end_ms,
        text=text,
        text_raw=hypothesis.text,
        words=words,
        language=language,
        tags=hypothesis.tags,
    )


def join_texts(texts: Sequence[str]) -> str:
    """Join segment texts: no space between CJK neighbours, one space otherwise."""
    out = ""
    for text in texts:
        text = text.strip()
        if not text:
            continue
        if out and not (_WIDE.match(out[-1]) and _WIDE.match(text[0])):
            out += " "
        out += text
    return out
