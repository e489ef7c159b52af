"""wetext (PyPI, WeTextProcessing's grammars compiled to FSTs) behind a safe, lazy facade.

wetext reads its FST files from its own package directory (no download), but
reading them takes ~0.25 s, so the normalizers are built once, on first use,
under a lock (the engine calls ITN from a thread pool). Every call answers
``None`` instead of raising or returning an empty string, so callers can fall
back to our own rules and never lose text.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["wetext_available", "wetext_itn"]

# (language, enable_0_to_9) -> wetext.Normalizer; filled once under _LOCK.
_NORMALIZERS: dict[tuple[str, bool], Any] = {}
_LOCK = threading.Lock()
_STATE: dict[str, bool] = {}
_ZH: dict[str, Any] = {"lang": "zh", "operator": "itn", "remove_interjections": True}


def _load() -> bool:
    """Build the three normalizers we use; False (logged once) when wetext is missing or broken."""
    if "ok" in _STATE:
        return _STATE["ok"]
    with _LOCK:
        if "ok" in _STATE:
            return _STATE["ok"]
        try:
            from wetext import Normalizer

            built = {
                # WeTextProcessing's default zh configuration; the interjection remover is its default too.
                ("zh", True): Normalizer(**_ZH, enable_0_to_9=True),
                ("zh", False): Normalizer(**_ZH, enable_0_to_9=False),
                ("en", False): Normalizer(lang="en", operator="itn"),
            }
            for (lang, _), normalizer in built.items():
                normalizer.normalize("一" if lang == "zh" else "one")  # read the FSTs now, not mid-request
            _NORMALIZERS.update(built)
            _STATE["ok"] = True
        except Exception:
            logger.exception("wetext unavailable; ITN falls back to the built-in rules")
            _STATE["ok"] = False
    return _STATE["ok"]


def wetext_available() -> bool:
    """True when wetext imported and its FSTs loaded (loads them on first call)."""
    return _load()


def wetext_itn(text: str, lang: str, *, enable_0_to_9: bool = True) -> str | None:
    """wetext's ITN of ``text`` ("zh" or "en"), or None when it fails or returns nothing."""
    if not _load():
        return None
    normalizer = _NORMALIZERS.get((lang, enable_0_to_9 and lang == "zh"))
    if normalizer is None:
        return None
    try:
        out = normalizer.normalize(text)
    except Exception:
        logger.debug("wetext failed on %r", text, exc_info=True)
        return None
    if not isinstance(out, str) or not out.strip():
        return None
    return out
