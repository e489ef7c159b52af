"""English clock times ("eleven forty five a m" -> 11:45 a.m.), dates and years ("nineteen ninety four")."""

from __future__ import annotations

import logging

from asr_engine.text.itn_en_numbers import (
    ONES,
    ORD_ONES,
    PLURAL_TENS,
    SCALES,
    TEENS,
    TENS,
    parse_cardinal,
    parse_pieces,
)

logger = logging.getLogger(__name__)

__all__ = ["MONTHS", "match_date", "match_time", "match_year"]

Match = tuple[int, str]

MONTHS = frozenset(
    [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ]
)
_HOURS = {**ONES, **{k: v for k, v in TEENS.items() if v <= 12}}
_ZONES = {
    "g m t": "gmt",
    "e s t": "est",
    "p s t": "pst",
    "c s t": "cst",
    "u t c": "utc",
    "c e t": "cet",
    "e d t": "edt",
    "p d t": "pdt",
    "gmt": "gmt",
    "est": "est",
    "pst": "pst",
    "utc": "utc",
    "cst": "cst",
}
_ERAS = {"b c e": "BCE", "b c": "BC", "a d": "AD", "c e": "CE", "bce": "BCE", "bc": "BC", "ad": "AD"}


def _phrase(words: list[str], i: int, limit: int, table: dict[str, str]) -> Match | None:
    """Longest key of ``table`` (space-separated words) at ``words[i]``."""
    for n in (3, 2, 1):
        if i + n <= limit:
            key = " ".join(words[i : i + n])
            if key in table:
                return i + n, table[key]
    return None


def _ampm(words: list[str], i: int, limit: int) -> Match | None:
    if i < limit and words[i] in ("am", "a.m.", "pm", "p.m."):
        return i + 1, "a.m." if words[i].startswith("a") else "p.m."
    if i + 1 < limit and words[i] in ("a", "p") and words[i + 1] == "m":
        return i + 2, f"{words[i]}.m."
    return None


def _suffixes(words: list[str], j: int, limit: int) -> tuple[int, str, bool]:
    """am/pm and a time zone after a clock time; returns (end, text, found_any)."""
    out = ""
    found = False
    ampm = _ampm(words, j, limit)
    if ampm:
        j, text = ampm
        out += " " + text
        found = True
    zone = _phrase(words, j, limit, _ZONES)
    if zone:
        j, text = zone
        out += " " + text
        found = True
    return j, out, found


def _minutes(words: list[str], j: int, limit: int) -> tuple[int, int] | None:
    """Minutes after the hour: "o six", "fifteen", "forty five"."""
    if j >= limit:
        return None
    w = words[j]
    if w in ("o", "oh") and j + 1 < limit and words[j + 1] in ONES and words[j + 1] != "zero":
        return j + 2, ONES[words[j + 1]]
    if w in TEENS:
        return j + 1, TEENS[w]
    if w in TENS and TENS[w] < 60:
        if j + 1 < limit and words[j + 1] in ONES and words[j + 1] != "zero":
            return j + 2, TENS[w] + ONES[words[j + 1]]
        return j + 1, TENS[w]
    return None


_OCLOCK = ("oclock", "o'clock")


def match_time(words: list[str], i: int, limit: int) -> Match | None:
    """Clock times; the hour is zero-padded as in the reference suites (02:30 p.m.)."""
    rel = _relative_time(words, i, limit)
    if rel:
        return rel
    w = words[i]
    if w not in _HOURS or w == "zero":
        return None
    hour = _HOURS[w]
    j = i + 1
    if j < limit and words[j] in _OCLOCK:
        j += 1
        end, suffix, _ = _suffixes(words, j, limit)
        return end, f"{hour:02d}:00{suffix}"
    if j + 1 < limit and (words[j], words[j + 1]) in (("o'", "clock"), ("o", "clock")):
        end, suffix, _ = _suffixes(words, j + 2, limit)
        return end, f"{hour:02d}:00{suffix}"
    mins = _minutes(words, j, limit)
    if mins:
        end, minute = mins
        if end < limit and (words[end] in SCALES or words[end] in ("hundred", "point")):
            return None
        end, suffix, _ = _suffixes(words, end, limit)
        return end, f"{hour:02d}:{minute:02d}{suffix}"
    end, suffix, found = _suffixes(words, j, limit)
    if found and _ampm(words, j, limit):
        return end, f"{hour:02d}:00{suffix}"
    return None


def _relative_time(words: list[str], i: int, limit: int) -> Match | None:
    """ "quarter past one", "ten to eleven pm", "one min to one am", "twenty five past three"."""
    w = words[i]
    j = i
    if w == "quarter":
        minute, j = 15, i + 1
    elif w == "half":
        minute, j = 30, i + 1
    else:
        card = parse_cardinal(words, i, limit)
        if card is None or not 1 <= card.value <= 59:
            return None
        minute, j = card.value, card.end
        if j < limit and words[j] in ("min", "mins", "minute", "minutes"):
            j += 1
    if j + 1 >= limit or words[j] not in ("past", "after", "to", "till", "before"):
        return None
    direction = words[j]
    if w == "half" and direction != "past":
        return None
    h = words[j + 1]
    if h not in _HOURS or h == "zero":
        return None
    hour = _HOURS[h]
    if direction in ("to", "till", "before"):
        hour = 12 if hour == 1 else hour - 1
        minute = 60 - minute
    end, suffix, _ = _suffixes(words, j + 2, limit)
    return end, f"{hour:02d}:{minute:02d}{suffix}"


def match_year(words: list[str], i: int, limit: int, *, era_only: bool = False) -> Match | None:
    """Years: "nineteen ninety four", "twenty twelve", "nineteen eighties", "seven fifty b c"."""
    pieces = parse_pieces(words, i, limit, allow_hundred=True)
    best: Match | None = None
    if pieces is not None and pieces.kinds and pieces.kinds[0] == "2":
        first = pieces.parts[0]
        end = None
        text = None
        if len(pieces.parts) >= 2 and int(first) >= 11:
            k1 = pieces.kinds[1]
            if k1 == "h":
                end, text = _piece_end(words, i, 2, limit), first + "00"
            elif k1 == "2" and int(pieces.parts[1]) >= 10:
                end, text = _piece_end(words, i, 2, limit), first + pieces.parts[1]
            elif k1 == "d" and pieces.parts[1] == "0" and len(pieces.parts) >= 3 and pieces.kinds[2] == "d":
                end, text = _piece_end(words, i, 3, limit), first + "0" + pieces.parts[2]
        if end is not None and text is not None:
            best = (end, text)
        # Decades: "nineteen eighties"
        nxt = _piece_end(words, i, 1, limit)
        if int(first) >= 11 and nxt < limit and words[nxt] in PLURAL_TENS:
            best = (nxt + 1, f"{first}{PLURAL_TENS[words[nxt]]}s")
        if int(first) >= 11 and nxt < limit and words[nxt] == "hundreds":
            best = (nxt + 1, f"{first}00s")
    if best is None and i + 1 < limit and words[i] in ONES and words[i + 1] == "thousands":
        best = (i + 2, f"{ONES[words[i]]}000s")
    era_start = best[0] if best else None
    # "seven fifty b c": any number followed by an era
    if pieces is not None:
        digits_end = pieces.end
        era = _phrase(words, digits_end, limit, _ERAS)
        card = parse_cardinal(words, i, limit)
        if era and (era_start is None or era_start <= digits_end):
            text = pieces.digits if len(pieces.parts) > 1 else str(int(pieces.digits))
            if card is not None and card.end == digits_end and card.value >= 100:
                text = str(card.value)
            return era[0], text + era[1]
        if card is not None and card.end < limit:
            era = _phrase(words, card.end, limit, _ERAS)
            if era:
                return era[0], str(card.value) + era[1]
    if best is not None:
        era = _phrase(words, best[0], limit, _ERAS)
        if era:
            return era[0], best[1] + era[1]
    if era_only:
        return None
    return best


def _piece_end(words: list[str], i: int, n_pieces: int, limit: int) -> int:
    """Index after the first ``n_pieces`` pieces starting at ``i``."""
    pieces = parse_pieces(words, i, limit, allow_hundred=True)
    if pieces is None:
        return i
    j = i
    for kind in pieces.kinds[:n_pieces]:
        if kind == "dd" or (
            kind == "2"
            and words[j] in TENS
            and j + 1 < limit
            and words[j + 1] in ONES
            and words[j + 1] != "zero"
        ):
            j += 2
        else:
            j += 1
    return j


def _year_any(words: list[str], i: int, limit: int) -> Match | None:
    """A year after a month: a spoken pair or a cardinal from 1000 up."""
    pair = match_year(words, i, limit)
    card = parse_cardinal(words, i, limit)
    card_match = (card.end, str(card.value)) if card and 1000 <= card.value < 3000 else None
    options = [m for m in (pair, card_match) if m]
    return max(options, key=lambda m: m[0]) if options else None


def _day(words: list[str], i: int, limit: int) -> tuple[int, int] | None:
    card = parse_cardinal(words, i, limit, allow_ordinal=True)
    if card is None or not 1 <= card.value <= 31 or card.words > 2:
        return None
    return card.end, card.value


def match_date(words: list[str], orig: list[str], i: int, limit: int) -> Match | None:
    """Month-day-year, "the fifth of may", quarters/halves of a year, decades and eras."""
    w = words[i]
    if w in MONTHS:
        month = orig[i]
        best: Match | None = None
        year = _year_any(words, i + 1, limit)
        if year:
            best = (year[0], f"{month} {year[1]}")
        day = _day(words, i + 1, limit)
        if day:
            end, d = day
            candidate = (end, f"{month} {d}")
            year = _year_any(words, end, limit)
            if year:
                candidate = (year[0], f"{month} {d} {year[1]}")
            if best is None or candidate[0] > best[0]:
                best = candidate
        return best
    if w == "the" and i + 3 < limit:
        day = _day(words, i + 1, limit)
        if day and day[0] + 1 < limit and words[day[0]] == "of" and words[day[0] + 1] in MONTHS:
            end = day[0] + 2
            text = f"{day[1]} {orig[day[0] + 1]}"
            year = _year_any(words, end, limit)
            if year:
                end, text = year[0], f"{text} {year[1]}"
            return end, text
        return None
    if w in ORD_ONES and i + 3 < limit and words[i + 1] in ("quarter", "half") and words[i + 2] == "of":
        year = _year_any(words, i + 3, limit)
        n = ORD_ONES[w]
        if year and ((words[i + 1] == "quarter" and 1 <= n <= 4) or (words[i + 1] == "half" and n in (1, 2))):
            letter = "Q" if words[i + 1] == "quarter" else "H"
            return year[0], f"{letter}{n} {year[1]}"
        return None
    return match_year(words, i, limit)
