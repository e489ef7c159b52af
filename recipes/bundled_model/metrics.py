"""Word and character error rates, and the clean-up that turns decoded text into comparable words."""

from __future__ import annotations

import re
from collections.abc import Sequence

_TAG = re.compile(r"<\|[^|]*\|>")


def strip_tags(text: str) -> str:
    return " ".join(_TAG.sub(" ", text).split())


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def units(text: str, lang: str) -> list[str]:
    """Words for English, characters (spaces dropped) for Mandarin."""
    text = strip_tags(text).lower()
    return [c for c in text if not c.isspace()] if lang == "zh" else text.split()


def error_rate(refs: Sequence[str], hyps: Sequence[str], lang: str) -> tuple[float, int, int]:
    """(rate in %, errors, reference units) over a whole set."""
    errors = total = 0
    for r, h in zip(refs, hyps, strict=True):
        ru, hu = units(r, lang), units(h, lang)
        errors += edit_distance(ru, hu)
        total += len(ru)
    return 100.0 * errors / max(total, 1), errors, total
