"""Token strings -> text (and per-word time spans) for CharTokenizer models (Paraformer, SeACo).

Reproduces FunASR's post-processing (funasr-spec §6) including its quirks: an ``@@`` fragment survives
an intervening Chinese token (which takes over the fragment's time span), a fragment left pending at the
end is dropped, runs of single letters become one upper-case abbreviation, and the ``k``-th kept token
uses the ``k``-th span of the unfiltered list (spans are not re-indexed when ``<unk>`` is dropped).

Every string test FunASR makes of a token depends on that token alone, so ``CharTable`` makes them once
per vocabulary and assembles from token ids with list look-ups: the engine's results thread builds every
item's text under the GIL, next to the device thread (bench/hypothesis_speed.py).
"""

from __future__ import annotations

import dataclasses
import logging
import string
from collections.abc import Sequence
from dataclasses import dataclass

from asr_engine.types import Word

__all__ = ["CharTable", "CharText", "assemble_text", "is_chinese_like"]

log = logging.getLogger(__name__)

_SPECIAL = ("<s>", "</s>", "<unk>", "<OOV>")
_SPACE = " "
# FunASR's single-letter test (len 1, ASCII, alphabetic) as a set look-up.
_LETTERS = frozenset(string.ascii_letters)

Span = tuple[int, int]

# How the mixed (neither all-Chinese nor all-alphabetic) pass treats a token, tested in FunASR's order.
_CJK, _PIECE, _ALPHA, _OTHER = 0, 1, 2, 3


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


def _alpha_token(tok: str) -> bool:
    """One token of FunASR's all-alphabetic test."""
    cur = _clean(tok)
    if not cur.isalpha() and cur != "'":
        return False
    return not (cur.isalpha() and is_chinese_like(cur))


def _kind(tok: str) -> int:
    if tok and all(is_chinese_like(c) for c in tok):
        return _CJK
    if "@@" in tok:
        return _PIECE
    if tok and all((c.isalpha() or c == "'") and not is_chinese_like(c) for c in tok):
        return _ALPHA
    return _OTHER


class CharTable:
    """FunASR's per-token tests of one vocabulary, by token id (lists, indexed like ``tokens``).

    Read-only once built, so threads may share it; a model builds one when it loads its vocabulary.
    """

    def __init__(self, tokens: tuple[str, ...]) -> None:
        self.tokens = tokens
        self.special = [t in _SPECIAL for t in tokens]  # dropped before assembly
        self.has_special = any(self.special)
        self.chinese = [is_chinese_like(_clean(t)) for t in tokens]  # all-Chinese test
        self.unspaced = [t.replace(" ", "") for t in tokens]  # the all-Chinese pass's word
        self.alpha = [_alpha_token(t) for t in tokens]  # all-alphabetic test
        self.kind = [_kind(t) for t in tokens]  # the mixed pass's branch
        self.piece = [t.replace("@@", "") for t in tokens]  # an @@ fragment's text
        # A word can be a single letter (the only thing abbreviation merging looks at) only when its token is.
        self.letter = [t in _LETTERS for t in tokens]

    def _kept(self, ids: Sequence[int]) -> Sequence[int]:
        special = self.special
        if self.has_special and any(map(special.__getitem__, ids)):
            return [i for i in ids if not special[i]]
        return ids

    def text(self, ids: Sequence[int], *, spaced: bool = False) -> str:
        """FunASR's text of token ``ids``: ``spaced`` is the form it gives with timestamps (words joined
        by single spaces), else words are concatenated (CJK glued, English words space-separated)."""
        ids = self._kept(ids)
        if not ids:
            return ""
        if all(map(self.chinese.__getitem__, ids)):
            return (" " if spaced else "").join(map(self.unspaced.__getitem__, ids)).strip()
        merge = sum(map(self.letter.__getitem__, ids)) >= 2
        alpha = all(map(self.alpha.__getitem__, ids))
        if alpha and not merge:
            text = " ".join(map(self.tokens.__getitem__, ids))
            return text.strip() if spaced else (text + _SPACE).strip()
        words = self._alpha_words(ids) if alpha else self._mixed_words(ids)
        if merge:
            words, _ = _merge_abbreviations(words, [])
        if spaced:
            return " ".join([w for w in words if w != _SPACE]).strip()
        return "".join(words).strip()

    def assemble(self, ids: Sequence[int], spans: Sequence[Span] | None = None) -> CharText:
        """Text and, with ``spans`` (one per id, ms), the words with their spans (see ``assemble_text``)."""
        if spans is None:
            return CharText(self.text(ids), ())
        if len(spans) != len(ids):
            raise ValueError(f"{len(spans)} spans for {len(ids)} tokens")
        ids = self._kept(ids)
        if not ids:
            return CharText("", ())
        if all(map(self.chinese.__getitem__, ids)):
            words = list(map(self.unspaced.__getitem__, ids))
            return CharText(" ".join(words).strip(), _words(words, spans))
        merge = sum(map(self.letter.__getitem__, ids)) >= 2
        if all(map(self.alpha.__getitem__, ids)):
            if not merge:
                words = list(map(self.tokens.__getitem__, ids))
                return CharText(" ".join(words).strip(), _words(words, spans))
            words = self._alpha_words(ids)
            word_spans = list(spans[: len(ids)])
        else:
            words, word_spans = self._mixed_words_spans(ids, spans)
        if merge:
            words, word_spans = _merge_abbreviations(words, word_spans)
        real = [w for w in words if w != _SPACE]
        return CharText(" ".join(real).strip(), _words(real, word_spans))

    def _alpha_words(self, ids: Sequence[int]) -> list[str]:
        """The all-alphabetic pass: every token, each followed by a " " entry."""
        words: list[str] = []
        tokens = self.tokens
        for i in ids:
            words += (tokens[i], _SPACE)
        return words

    def _mixed_words(self, ids: Sequence[int]) -> list[str]:
        """The mixed pass's word list (with " " separator entries), without spans."""
        tokens, kind, piece = self.tokens, self.kind, self.piece
        words: list[str] = []
        pending = ""
        after_alpha = False
        for i in ids:
            k = kind[i]
            if k == _CJK:
                if after_alpha:
                    words.pop()
                words.append(tokens[i])
                after_alpha = False
            elif k == _PIECE:
                pending += piece[i]
                after_alpha = False
            elif k == _ALPHA:
                words += (pending + tokens[i], _SPACE)
                pending = ""
                after_alpha = True
            else:
                words.append(tokens[i])
        return words

    def _mixed_words_spans(self, ids: Sequence[int], spans: Sequence[Span]) -> tuple[list[str], list[Span]]:
        """The mixed pass with spans: one span per non-" " entry (the ``k``-th kept id reads ``spans[k]``)."""
        tokens, kind, piece = self.tokens, self.kind, self.piece
        words: list[str] = []
        out_spans: list[Span] = []
        pending = ""
        after_alpha = False
        begin = end = 0
        span_open = True  # False while an @@ word is accumulating: its first piece's start is kept
        for k, i in enumerate(ids):
            if span_open:
                begin, end = spans[k]
            c = kind[i]
            if c == _CJK:
                if after_alpha:
                    words.pop()
                words.append(tokens[i])
                after_alpha = False
                span_open = True
                out_spans.append((begin, end))
                begin = end
            elif c == _PIECE:
                pending += piece[i]
                after_alpha = False
                span_open = False
                end = spans[k][1]
            elif c == _ALPHA:
                words += (pending + tokens[i], _SPACE)
                pending = ""
                after_alpha = True
                span_open = True
                end = spans[k][1]
                out_spans.append((begin, end))
                begin = end
            else:
                # FunASR emits such a token without a span (and would then misalign or fail); we give it
                # its own span so the word list and the spans stay paired.
                words.append(tokens[i])
                out_spans.append(spans[k])
        return words, out_spans


def _plain_word_class() -> bool:
    """Whether ``Word(text=, start_ms=, end_ms=)`` does nothing but store its three fields in ``__dict__``
    (a dataclass without ``__post_init__``, slots or a custom ``__new__``)."""
    return (
        dataclasses.is_dataclass(Word)
        and tuple(f.name for f in dataclasses.fields(Word)) == ("text", "start_ms", "end_ms")
        and not hasattr(Word, "__post_init__")
        and "__slots__" not in vars(Word)
        and Word.__new__ is object.__new__
    )


# A frozen dataclass's __init__ stores each field through object.__setattr__: ~0.9 µs a word, half the
# cost of a timestamped item's words. Setting the instance dict in one step makes equal objects (same
# fields, eq, hash, repr, pickling) in half the time; it is used only while Word stays such a plain class.
_FAST_WORDS = _plain_word_class()


def _words(texts: Sequence[str], spans: Sequence[Span]) -> tuple[Word, ...]:
    """``Word``s pairing ``texts`` with ``spans`` (the shorter one decides, as FunASR's zip)."""
    if not _FAST_WORDS:
        return tuple(Word(text=w, start_ms=s, end_ms=e) for w, (s, e) in zip(texts, spans, strict=False))
    new, set_attr = object.__new__, object.__setattr__
    out = []
    for w, (s, e) in zip(texts, spans, strict=False):
        word = new(Word)
        set_attr(word, "__dict__", {"text": w, "start_ms": s, "end_ms": e})
        out.append(word)
    return tuple(out)


def _merge_abbreviations(words: list[str], spans: list[Span]) -> tuple[list[str], list[Span]]:
    """Merge runs ``a " " b " " c`` of single ASCII letters into "ABC" (span: first to last letter)."""
    out_words: list[str] = []
    out_spans: list[Span] = []
    span_index = 0  # index into spans of the next non-space entry
    i = 0
    n = len(words)
    letters_set = _LETTERS
    while i < n:
        if words[i] in letters_set and i + 2 < n and words[i + 1] == _SPACE and words[i + 2] in letters_set:
            j = i + 2
            while j + 2 < n and words[j + 1] == _SPACE and words[j + 2] in letters_set:
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
    Decoders holding ids use their vocabulary's ``CharTable`` instead (no per-call table).
    """
    index: dict[str, int] = {}
    ids = [index.setdefault(t, len(index)) for t in tokens]
    return CharTable(tuple(index)).assemble(ids, spans)
