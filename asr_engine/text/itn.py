"""Inverse text normalization entry point: spoken-form ASR text in, written form out.

The maintained library (wetext: WeTextProcessing's grammars as FSTs) does the
work; our own rules wrap it:

* zh: spoken dates with a month are rewritten by our rule first and kept away
  from wetext, so they keep Chinese units (2025年3月5号, not 2025/03/05). The
  rest goes through wetext in WeTextProcessing's default configuration
  (enable_0_to_9); where that returns nothing, wetext without 0-to-9 and then
  our rules finish the text; where everything fails, our rules alone.
* en: our own rules (itn_en). wetext's English graph scores the same on the
  suites but rewrites everyday words ("wait a second" -> "a 2nd", "at first"
  -> "at 1st", "go to" -> "goto"), so it is not used for English.
* A result is never empty for non-empty input: the input comes back instead.

The engine punctuates first and applies ITN second. Mixed text is handled by
running the other language's pass over its own script: English words inside
Chinese text (and Chinese inside English text) get normalized too.
"""

from __future__ import annotations

import logging
import re

from asr_engine.text.itn_en import itn_en
from asr_engine.text.itn_options import DEFAULT_OPTIONS, ItnOptions
from asr_engine.text.itn_wetext import wetext_itn
from asr_engine.text.itn_zh import itn_zh, zh_date_spans, zh_protected_spans

logger = logging.getLogger(__name__)

__all__ = ["SUPPORTED_LANGUAGES", "ItnOptions", "apply_itn", "attach_punctuation"]

SUPPORTED_LANGUAGES = ("zh", "en")

# A run of Latin words (with the spaces and light punctuation between them) inside CJK text.
_LATIN_RUN_RE = re.compile(r"[A-Za-z][A-Za-z0-9' .,?!-]*[A-Za-z0-9]|[A-Za-z]")
_CJK_RUN_RE = re.compile(r"[\u4e00-\u9fff][\u4e00-\u9fff，。？！、：；]*")
_HAS_CJK_RE = re.compile(r"[\u4e00-\u9fff]")
_HAS_LATIN_RE = re.compile(r"[A-Za-z]{2}")
# zh text is handed to wetext one clause at a time: a clause it cannot parse falls back alone.
_ZH_CLAUSE_RE = re.compile(r"([，。？！；：]+)")
# "一千克" is one kilogram (1kg), not a thousand grams; wetext reads the latter, WeTextProcessing the former.
_KILOGRAM_RE = re.compile(r"(?<=[零一二两三四五六七八九十])千克")
_WETEXT_MAX_CHARS = 200
# Marks that close (or open) a phrase; ITN leaves them as tokens of their own next to a rewrite.
_CLOSING = r",.;:!?)\]}，。？！、；：…"
_SPACE_BEFORE_CLOSING_RE = re.compile(rf"(?<=\S)\s+(?=[{_CLOSING}]+(?:\s|$))")
_SPACE_AFTER_OPENING_RE = re.compile(r"(?<=[(\[{])\s+(?=\S)")
_ZH_NUMERALS = frozenset("零〇一二两三四五六七八九十百千万亿幺点负正分之呃嗯啊")


def apply_itn(text: str, language: str, *, options: ItnOptions = DEFAULT_OPTIONS) -> str:
    """Return ``text`` with spoken numbers, dates, money, ... in written form.

    ``language`` is the segment's language ("zh" or "en"); anything else returns
    the text unchanged.
    """
    if not text or not text.strip():
        return text
    lang = language.lower().split("-")[0].split("_")[0]
    if lang in ("zh", "yue", "cmn"):
        out = _zh(text, options)
        if _HAS_LATIN_RE.search(out):
            out = _LATIN_RUN_RE.sub(lambda m: _en_inside_zh(m.group(0)), out)
    elif lang == "en":
        if _HAS_CJK_RE.search(text):
            text = _CJK_RUN_RE.sub(lambda m: _zh(m.group(0), options), text)
        out = itn_en(text)
    else:
        return text
    return out if out.strip() else text


def attach_punctuation(text: str) -> str:
    """Written-text typography: no space before a closing mark or after an opening bracket.

    apply_itn follows the suites' tokens (NeMo, WeTextProcessing: "twenty!" ->
    "20 !"); a transcript reads "20!". The engine runs this right after ITN.
    """
    return _SPACE_AFTER_OPENING_RE.sub("", _SPACE_BEFORE_CLOSING_RE.sub("", text))


def _zh(text: str, options: ItnOptions) -> str:
    """Dates by our rule (Chinese units), protected words kept, the rest clause by clause."""
    if options != DEFAULT_OPTIONS:
        return itn_zh(text, options)  # an explicit convention: our rules implement every switch
    parts: list[str] = []
    pos = 0
    spans = sorted(zh_date_spans(text) + zh_protected_spans(text))
    for start, end, written in spans:
        if start < pos:
            continue  # overlaps a span already taken
        parts.append(_zh_clauses(text[pos:start]))
        parts.append(written)
        pos = end
    parts.append(_zh_clauses(text[pos:]))
    return "".join(parts)


def _zh_clauses(text: str) -> str:
    pieces = _ZH_CLAUSE_RE.split(text)
    for i in range(0, len(pieces), 2):
        pieces[i] = _zh_clause(pieces[i])
    return "".join(pieces)


def _zh_clause(text: str) -> str:
    """One clause with no date in it: wetext, then wetext without 0-to-9 plus our rules, then ours."""
    if not any(ch in _ZH_NUMERALS for ch in text):
        return text
    if len(text) > _WETEXT_MAX_CHARS:
        return itn_zh(text)  # wetext's composition grows super-linearly; a run-on clause gets our rules
    text = _KILOGRAM_RE.sub("公斤", text)
    out = wetext_itn(text, "zh", enable_0_to_9=True)
    if out is None:
        # wetext's 0-to-9 graph has no path for some sentences; its plain graph does the
        # multi-digit numbers and our rules the lone digits (三盒 -> 3盒) it leaves.
        partial = wetext_itn(text, "zh", enable_0_to_9=False)
        out = itn_zh(partial if partial is not None else text)
    return out if out.strip() else text


def _en_inside_zh(run: str) -> str:
    """English ITN on a Latin run inside Chinese text, keeping its edges."""
    if " " not in run:
        return run  # a lone word or a plate/letter mix ("鄂a7l62u"): leave it
    return itn_en(run)
