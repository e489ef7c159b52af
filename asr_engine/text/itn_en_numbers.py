"""English number words: cardinals, ordinals, decimals and digit-by-digit readings.

Parsers take the lower-cased word list, a start index and an exclusive limit,
and return how far they got, so the caller can pick the longest reading.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

__all__ = [
    "DIGIT_WORDS",
    "NUMBER_WORDS",
    "Cardinal",
    "Pieces",
    "ordinal_suffix",
    "parse_cardinal",
    "parse_decimal",
    "parse_pieces",
]

ONES = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
TEENS = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
ORD_ONES = {
    "zeroth": 0,
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
}
ORD_TEENS = {
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
    "seventeenth": 17,
    "eighteenth": 18,
    "nineteenth": 19,
}
ORD_TENS = {
    "twentieth": 20,
    "thirtieth": 30,
    "fortieth": 40,
    "fiftieth": 50,
    "sixtieth": 60,
    "seventieth": 70,
    "eightieth": 80,
    "ninetieth": 90,
}
SCALES = {
    "thousand": 10**3,
    "lakh": 10**5,
    "million": 10**6,
    "crore": 10**7,
    "billion": 10**9,
    "trillion": 10**12,
    "quadrillion": 10**15,
    "quintillion": 10**18,
    "sextillion": 10**21,
}
ORD_SCALES = {"hundredth": 100, "thousandth": 10**3, "millionth": 10**6, "billionth": 10**9}
PLURAL_TENS = {
    "tens": 10,
    "twenties": 20,
    "thirties": 30,
    "forties": 40,
    "fifties": 50,
    "sixties": 60,
    "seventies": 70,
    "eighties": 80,
    "nineties": 90,
}
# Words read as a digit when numbers are spelled out digit by digit.
DIGIT_WORDS = dict(ONES, o=0, oh=0)
NUMBER_WORDS = frozenset(ONES) | frozenset(TEENS) | frozenset(TENS) | frozenset(SCALES) | {"hundred"}


@dataclass(frozen=True)
class Cardinal:
    """A parsed cardinal or ordinal: ``end`` is the index after its last word.

    ``scale_word`` is set when the number is "<n> million" with nothing after the
    scale, which the written form keeps as a word ("400 million").
    """

    end: int
    value: int
    ordinal: bool = False
    words: int = 1
    scale_word: str | None = None
    scale_coef: int = 0


def parse_cardinal(words: list[str], i: int, limit: int, *, allow_ordinal: bool = False) -> Cardinal | None:
    """Longest cardinal (or, with ``allow_ordinal``, ordinal) starting at ``words[i]``."""
    if i >= limit:
        return None
    if words[i] == "zero":
        return Cardinal(i + 1, 0)
    if allow_ordinal and words[i] == "zeroth":
        return Cardinal(i + 1, 0, ordinal=True)
    total = 0
    current = 0
    last = "start"  # kind of the previous word: start, ones, teens, tens, hundred, scale, and
    last_scale = 10**30
    best: Cardinal | None = None
    j = i
    while j < limit:
        w = words[j]
        ordinal = False
        if (
            (w in ORD_ONES and allow_ordinal and w != "zeroth")
            or (w in ORD_TEENS and allow_ordinal)
            or (w in ORD_TENS and allow_ordinal)
            or (w in ORD_SCALES and allow_ordinal)
        ):
            w, ordinal = _ORD_TO_CARD[w], True
        if w in ONES and w != "zero" and last in ("start", "tens", "hundred", "scale", "and"):
            if last == "tens" and current % 10:
                break
            current += ONES[w]
            kind = "ones"
        elif w in TEENS and last in ("start", "hundred", "scale", "and"):
            current += TEENS[w]
            kind = "teens"
        elif w in TENS and last in ("start", "hundred", "scale", "and"):
            current += TENS[w]
            kind = "tens"
        elif w == "hundred" and last in ("ones", "teens", "tens") and 0 < current < 100:
            current *= 100
            kind = "hundred"
        elif w in SCALES and last in ("ones", "teens", "tens", "hundred") and SCALES[w] < last_scale:
            scale = SCALES[w]
            if current >= 1000 and scale >= 10**3 and current >= scale:
                break
            coef = current
            total += current * scale
            current = 0
            last_scale = scale
            kind = "scale"
            j += 1
            scale_word = w if total == coef * scale and not ordinal else None
            best = Cardinal(j, total, ordinal, j - i, scale_word, coef)
            last = kind
            if ordinal:
                break
            continue
        elif (
            w == "and"
            and last in ("hundred", "scale")
            and j + 1 < limit
            and (
                words[j + 1] in ONES
                or words[j + 1] in TEENS
                or words[j + 1] in TENS
                or (
                    allow_ordinal
                    and (words[j + 1] in ORD_ONES or words[j + 1] in ORD_TEENS or words[j + 1] in ORD_TENS)
                )
            )
        ):
            last = "and"
            j += 1
            continue
        else:
            break
        j += 1
        last = kind
        best = Cardinal(j, total + current, ordinal, j - i)
        if ordinal:
            break
    if best is not None and best.ordinal and not allow_ordinal:
        return None
    return best


_ORD_TO_CARD = {
    **{o: c for c, o in zip(ONES, ORD_ONES, strict=True)},
    **{o: c for c, o in zip(TEENS, ORD_TEENS, strict=True)},
    **{o: c for c, o in zip(TENS, ORD_TENS, strict=True)},
    "hundredth": "hundred",
    "thousandth": "thousand",
    "millionth": "million",
    "billionth": "billion",
}


def ordinal_suffix(n: int) -> str:
    """English ordinal suffix for ``n``: 1st, 2nd, 3rd, 11th, 112th."""
    if n % 100 in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


@dataclass(frozen=True)
class Pieces:
    """Numbers spoken in pieces ("nineteen oh five", "double seven"): each piece's digits."""

    end: int
    parts: tuple[str, ...]
    kinds: tuple[str, ...]  # "d" one digit, "dd" repeated digits, "2" a two-digit word group, "h" hundred

    @property
    def digits(self) -> str:
        return "".join(self.parts)


def parse_pieces(words: list[str], i: int, limit: int, *, allow_hundred: bool = False) -> Pieces | None:
    """Read consecutive digit groups: one, oh, double five, twenty one, nineteen; joined as digits."""
    parts: list[str] = []
    kinds: list[str] = []
    j = i
    while j < limit:
        w = words[j]
        if w in ("double", "triple") and j + 1 < limit and words[j + 1] in DIGIT_WORDS:
            parts.append(str(DIGIT_WORDS[words[j + 1]]) * (2 if w == "double" else 3))
            kinds.append("dd")
            j += 2
        elif w in TENS:
            if j + 1 < limit and words[j + 1] in ONES and words[j + 1] != "zero":
                parts.append(str(TENS[w] + ONES[words[j + 1]]))
                j += 2
            else:
                parts.append(str(TENS[w]))
                j += 1
            kinds.append("2")
        elif w in TEENS:
            parts.append(str(TEENS[w]))
            kinds.append("2")
            j += 1
        elif w in DIGIT_WORDS:
            parts.append(str(DIGIT_WORDS[w]))
            kinds.append("d")
            j += 1
        elif allow_hundred and w == "hundred" and kinds and kinds[-1] == "2":
            parts.append("00")
            kinds.append("h")
            j += 1
        else:
            break
    if not parts:
        return None
    return Pieces(j, tuple(parts), tuple(kinds))


@dataclass(frozen=True)
class Decimal:
    """A spoken decimal: ``text`` is the written number without any scale word."""

    end: int
    text: str
    scale_word: str | None = None


def _fraction_digits(words: list[str], j: int, limit: int) -> tuple[int, str]:
    digits = []
    while j < limit and words[j] in DIGIT_WORDS:
        digits.append(str(DIGIT_WORDS[words[j]]))
        j += 1
    return j, "".join(digits)


def parse_decimal(words: list[str], i: int, limit: int) -> Decimal | None:
    """ "eighteen point o five" -> 18.05, "point two" -> .2, "five point two million" -> 5.2 + million."""
    if i < limit and words[i] == "point":
        j, frac = _fraction_digits(words, i + 1, limit)
        if not frac:
            return None
        return _with_scale(words, j, limit, "." + frac)
    card = parse_cardinal(words, i, limit)
    if card is None or card.end >= limit or words[card.end] != "point" or card.scale_word is not None:
        return None
    j, frac = _fraction_digits(words, card.end + 1, limit)
    if not frac:
        return None
    return _with_scale(words, j, limit, f"{card.value}.{frac}")


def _with_scale(words: list[str], j: int, limit: int, text: str) -> Decimal:
    if j < limit and words[j] in SCALES and words[j] not in ("lakh", "crore"):
        return Decimal(j + 1, text, words[j])
    return Decimal(j, text)
