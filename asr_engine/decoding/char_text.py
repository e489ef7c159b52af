"""Token strings -> text (and per-word time spans) for CharTokenizer models (Paraformer, SeACo).

Reproduces FunASR's post-processing (funasr-spec §6) including its quirks: an ``@@`` fragment survives
an intervening Chinese token (which takes over the fragment's time span), a fragment left pending at the
end is dropped, runs of single letters become one upper-case abbreviation, and the ``k``-th kept token
uses the ``k``-th span of the unfiltered list (spans are not re-indexed when ``<unk>`` is dropped).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from asr_engine.types import Word

__all__ = ["CharText", "assemble_text", "is_chinese_like"]

log = logging.getLogger(__name__)

_SPECIAL = ("<s>", "</s>", "<unk>", "<OOV>")
_SPACE = " "


@dataclass(frozen=True)
class CharText:
    """``text`` exactly as FunASR returns it; ``words`` (with spans) only when spans were given."""

    text: str
    words: tuple[Word, ...]


def is_chinese_like(s: str) -> bool:
    """FunASR's string test: within U+4E00..U+9FFF or "0".."9" by string comparison, or "@"."""
    return ("\u4e00" <= s <= "\u9fff") or ("0" <= s <= "9") or s == "@"


def _clean(tok: str) -> str:
    for special in (" ", *_SPECIAL):
        tok = tok.replace(special, "")
    return tok


def _all_chinese_tokens(tokens: Sequence[str]) -> bool:
    return bool(tokens) and all(is_chinese_like(_clean(t)) for t in tokens)


def _all_alpha_tokens(tokens: Sequence[str]) -> bool:
    if not tokens:
        return False
    for tok in tokens:
        cur = _clean(tok)
        if not cur.isalpha() and cur != "'":
            return False
        if cur.isalpha() and is_chinese_like(cur):
            return False
    return True


def _chars_chinese(tok: str) -> bool:
    return bool(tok) and all(is_chinese_like(c) for c in tok)


def _chars_alpha(tok: str) -> bool:
    return bool(tok) and all((c.isalpha() or c == "'") and not is_chinese_like(c) for c in tok)


Span = tuple[int, int]


def _word_list(tokens: Sequence[str], spans: Sequence[Span] | None) -> tuple[list[str], list[Span]]:
    """Build FunASR's word list (with " " separator entries) and one span per non-space entry."""
    words: list[str] = []
    out_spans: list[Span] = []
    if _all_chinese_tokens(tokens):
        words = [t.replace(" ", "") for t in tokens]
        if spans is not None:
            out_spans = list(spans[: len(words)])
        return words, out_spans
    if _all_alpha_tokens(tokens):
        for i, tok in enumerate(tokens):
            words += [tok, _SPACE]
            if spans is not None:
                out_spans.append(spans[i])
        return words, out_spans
    pending = ""
    after_alpha = False
    begin = end = 0
    span_open = True  # False while an @@ word is accumulating: its first piece's start is kept
    for i, tok in enumerate(tokens):
        if spans is not None and span_open:
            begin, end = spans[i]
        if _chars_chinese(tok):
            if after_alpha:
                words.pop()
            words.append(tok)
            after_alpha = False
            span_open = True
            out_spans.append((begin, end))
            begin = end
        elif "@@" in tok:
            pending += tok.replace("@@", "")
            after_alpha = False
            span_open = False
            if spans is not None:
                end = spans[i][1]
        elif _chars_alpha(tok):
            words += [pending + tok, _SPACE]
            pending = ""
            after_alpha = True
            span_open = True
            if spans is not None:
                end = spans[i][1]
            out_spans.append((begin, end))
            begin = end
        else:
            # FunASR emits such a token without a span (and would then misalign or fail); we give it
            # its own span so the word list and the spans stay paired.
            words.append(tok)
            if spans is not None:
                out_spans.append(spans[i])
    return words, out_spans


def _is_letter(w: str) -> bool:
    return len(w) == 1 and w.isascii() and w.isalpha()


def _merge_abbreviations(words: list[str], spans: list[Span]) -> tuple[list[str], list[Span]]:
    """Merge runs ``a " " b " " c`` of single ASCII letters into "ABC" (span: first to last letter)."""
    out_words: list[str] = []
    out_spans: list[Span] = []
    span_index = 0  # index into spans of the next non-space entry
    i = 0
    n = len(words)
    while i < n:
        if _is_letter(words[i]) and i + 2 < n and words[i + 1] == _SPACE and _is_letter(words[i + 2]):
            j = i + 2
            while j + 2 < n and words[j + 1] == _SPACE and _is_letter(words[j + 2]):
                j += 2
            letters = words[i : j + 1 : 2]
            out_words.append("".join(letters).upper())
            if spans:
                out_spans.append((spans[span_index][0], spans[span_index + len(letters) - 1][1]))
            span_index += len(letters)
            i = j + 1
            continue
        out_words.append(words[i])
        if words[i] != _SPACE:
            if spans:
                out_spans.append(spans[span_index])
            span_index += 1
        i += 1
    return out_words, out_spans


def assemble_text(tokens: Sequence[str], spans: Sequence[Span] | None = None) -> CharText:
    """FunASR's ``text`` for ``tokens`` (ids 0/1/2 already removed).

    Without ``spans`` the words are concatenated (CJK glued, English words space-separated); with spans
    (one per input token, ms) the words are joined with single spaces and each gets a time span.
    """
    kept = [t for t in tokens if t not in _SPECIAL]
    words, word_spans = _word_list(kept, spans)
    words, word_spans = _merge_abbreviations(words, word_spans if spans is not None else [])
    real = [w for w in words if w != _SPACE]
    if spans is None:
        return CharText("".join(words).strip(), ())
    text = " ".join(real).strip()
    return CharText(
        text, tuple(Word(text=w, start_ms=s, end_ms=e) for w, (s, e) in zip(real, word_spans, strict=False))
    )
