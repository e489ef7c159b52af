"""Inverse text normalization entry point: spoken-form ASR text in, written form out.

The engine punctuates first and applies ITN second, so both language passes
cope with ``，。？`` and ``,.?`` around numbers. Mixed text is handled by
running the other language's pass over its own script: English words inside
Chinese text (and Chinese inside English text) get normalized too.
"""

from __future__ import annotations

import logging
import re

from asr_engine.text.itn_en import itn_en
from asr_engine.text.itn_options import DEFAULT_OPTIONS, ItnOptions
from asr_engine.text.itn_zh import itn_zh

logger = logging.getLogger(__name__)

__all__ = ["SUPPORTED_LANGUAGES", "ItnOptions", "apply_itn"]

SUPPORTED_LANGUAGES = ("zh", "en")

# A run of Latin words (with the spaces and light punctuation between them) inside CJK text.
_LATIN_RUN_RE = re.compile(r"[A-Za-z][A-Za-z0-9' .,?!-]*[A-Za-z0-9]|[A-Za-z]")
_CJK_RUN_RE = re.compile(r"[\u4e00-\u9fff][\u4e00-\u9fff，。？！、：；]*")
_HAS_CJK_RE = re.compile(r"[\u4e00-\u9fff]")
_HAS_LATIN_RE = re.compile(r"[A-Za-z]{2}")


def apply_itn(text: str, language: str, *, options: ItnOptions = DEFAULT_OPTIONS) -> str:
    """Return ``text`` with spoken numbers, dates, money, ... in written form.

    ``language`` is the segment's language ("zh" or "en"); anything else returns
    the text unchanged.
    """
    if not text:
        return text
    lang = language.lower().split("-")[0].split("_")[0]
    if lang in ("zh", "yue", "cmn"):
        out = itn_zh(text, options)
        if _HAS_LATIN_RE.search(out):
            out = _LATIN_RUN_RE.sub(lambda m: _en_inside_zh(m.group(0)), out)
        return out
    if lang == "en":
        if _HAS_CJK_RE.search(text):
            text = _CJK_RUN_RE.sub(lambda m: itn_zh(m.group(0), options), text)
        return itn_en(text)
    return text


def _en_inside_zh(run: str) -> str:
    """English ITN on a Latin run inside Chinese text, keeping its edges."""
    if " " not in run:
        return run  # a lone word or a plate/letter mix ("鄂a7l62u"): leave it
    return itn_en(run)
