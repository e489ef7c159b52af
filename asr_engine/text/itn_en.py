"""English inverse text normalization over lower-case spoken words.

At each word every matcher proposes a span and its written form; the longest
span wins (ties go to the matcher listed first), then matching resumes after
it. Punctuation stuck to a word ends a span, so "one, two" stays two numbers.
Conventions follow the NeMo/WeTextProcessing English test suites: digits for
10 and up, words for a lone zero..nine, zero-padded clock hours (02:30 p.m.).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from asr_engine.text.itn_en_datetime import MONTHS, match_date, match_time
from asr_engine.text.itn_en_measure import match_measure, match_money, read_amount
from asr_engine.text.itn_en_numbers import (
    DIGIT_WORDS,
    NUMBER_WORDS,
    ORD_ONES,
    ORD_SCALES,
    ORD_TEENS,
    ORD_TENS,
    ordinal_suffix,
    parse_cardinal,
    parse_pieces,
)

logger = logging.getLogger(__name__)

__all__ = ["itn_en"]

Match = tuple[int, str]

_EDGE_PUNCT = ',.;:!?"()[]{}，。？！、；：…'
_TOKEN_RE = re.compile(rf"^([{re.escape(_EDGE_PUNCT)}]*)(.*?)([{re.escape(_EDGE_PUNCT)}]*)$")
_TRIGGER_WORDS = (
    NUMBER_WORDS
    | frozenset(ORD_ONES)
    | frozenset(ORD_TEENS)
    | frozenset(ORD_TENS)
    | frozenset(ORD_SCALES)
    | {
        "o",
        "oh",
        "point",
        "double",
        "triple",
        "at",
        "dot",
        "quarter",
        "half",
        "doctor",
        "mister",
        "misses",
        "saint",
        "for",
        "s",
        "r",
        "c",
        "p",
        "l",
        "cat",
        "seven",
    }
)


_SEPS = {"dot": ".", "at": "@", "hyphen": "-", "dash": "-", "slash": "/", "colon": ":", "underscore": "_"}


@dataclass
class _Text:
    """The sentence split into words: ``words`` lower-cased for matching, ``orig`` as given."""

    orig: list[str]
    words: list[str]
    lead: list[str]
    trail: list[str]
    limits: list[int]
    has_sep: bool


def _split(text: str) -> _Text:
    orig: list[str] = []
    lead: list[str] = []
    trail: list[str] = []
    for token in text.split():
        m = _TOKEN_RE.match(token)
        if m is None or not m.group(2):
            orig.append(token)
            lead.append("")
            trail.append("")
            continue
        lead.append(m.group(1))
        orig.append(m.group(2))
        trail.append(m.group(3))
    words = [w.lower() for w in orig]
    n = len(words)
    limits = [n] * n
    nxt = n
    for k in range(n - 1, -1, -1):
        if trail[k] or (k + 1 < n and lead[k + 1]) or not orig[k] or orig[k][0] in _EDGE_PUNCT:
            nxt = k + 1
        limits[k] = nxt
    return _Text(orig, words, lead, trail, limits, any(w in _SEPS for w in words))


# --- whitelist --------------------------------------------------------------------------------

_WHITELIST = {
    "for example": "e.g.",
    "s and p": "S&P",
    "seven eleven": "7-eleven",
    "r t x": "RTX",
    "cat five e": "CAT5e",
    "c u d n n": "cuDNN",
    "p c i e": "PCIe",
    "l g a": "LGA",
    "g p u": "GPU",
    "c p u": "CPU",
}
_TITLES = {"doctor": "dr.", "mister": "mr.", "misses": "mrs.", "saint": "st."}
_DETERMINERS = frozenset(
    ["the", "a", "an", "my", "your", "his", "her", "our", "their", "this", "that", "every", "any"]
)


def _whitelist(t: _Text, i: int, limit: int) -> Match | None:
    for n in (5, 4, 3, 2):
        if i + n <= limit:
            key = " ".join(t.words[i : i + n])
            if key in _WHITELIST:
                return i + n, _WHITELIST[key]
    w = t.words[i]
    if w in _TITLES and i + 1 < limit and (i == 0 or t.words[i - 1] not in _DETERMINERS):
        return i + 1, _TITLES[w]
    return None


# --- electronic (e-mail, URL) -----------------------------------------------------------------

# Spelled-out codes and address parts longer than this are not looked for (keeps matching linear).
_MAX_CODE_WORDS = 40
_TLDS = frozenset(
    [
        "com",
        "org",
        "net",
        "edu",
        "gov",
        "io",
        "ai",
        "fr",
        "de",
        "uk",
        "cn",
        "jp",
        "ru",
        "in",
        "us",
        "co",
        "info",
        "biz",
        "me",
        "tv",
    ]
)


def _chunk(t: _Text, i: int, limit: int) -> tuple[int, str, bool]:
    """Letters, digits and at most one whole word; returns (end, text, only_single_letters)."""
    out = []
    words_used = 0
    letters_only = True
    j = i
    while j < min(limit, i + _MAX_CODE_WORDS) and t.words[j] not in _SEPS:
        w = t.words[j]
        pieces = parse_pieces(t.words, j, limit)
        if pieces is not None and w not in ("o", "a"):
            out.append(pieces.digits)
            letters_only = False
            j = pieces.end
            continue
        if len(w) == 1 and w.isalpha():
            out.append(w)
            j += 1
            continue
        if not re.fullmatch(r"[a-z0-9]+", w) or words_used:
            break
        words_used += 1
        letters_only = False
        out.append(w)
        j += 1
    return j, "".join(out), letters_only


def _electronic(t: _Text, i: int, limit: int) -> Match | None:
    if t.words[i] in _SEPS:
        return None
    parts: list[str] = []
    seps: list[str] = []
    j, text, letters = _chunk(t, i, limit)
    if j == i:
        return None
    parts.append(text)
    last_letters = letters
    last_text = text
    end = j
    while j < limit and j - i < _MAX_CODE_WORDS and t.words[j] in _SEPS:
        sep = t.words[j]
        k = j + 1
        while k < limit and t.words[k] == "slash" and sep in ("colon", "slash"):
            parts.append(_SEPS[t.words[k - 1]] if k - 1 > j else _SEPS[sep])
            k += 1
        if k > j + 1:
            parts.append(_SEPS["slash"])
            sep = "slash"
        c_end, c_text, c_letters = _chunk(t, k, limit)
        if c_end == k:
            break
        if k == j + 1:
            parts.append(_SEPS[sep])
        parts.append(c_text)
        seps.append(sep)
        last_letters, last_text = c_letters, c_text
        j = end = c_end
    head = "".join(parts[:1])
    url_start = head.startswith(("http", "www"))
    valid = (
        ("at" in seps and "dot" in seps[seps.index("at") :])
        or url_start
        or ("dot" in seps and (last_text in _TLDS or last_letters))
    )
    if not valid or not seps:
        return None
    return end, "".join(parts)


# --- telephone, IP addresses, digit strings, letter-digit codes --------------------------------


def _digit_groups(t: _Text, i: int, limit: int) -> tuple[int, list[str], list[tuple[str, ...]]] | None:
    groups: list[str] = []
    kinds: list[tuple[str, ...]] = []
    j = i
    while True:
        pieces = parse_pieces(t.words, j, limit)
        if pieces is None:
            break
        groups.append(pieces.digits)
        kinds.append(pieces.kinds)
        j = pieces.end
        if j + 1 < limit and t.words[j] == "dot" and parse_pieces(t.words, j + 1, limit):
            j += 1
            continue
        break
    return (j, groups, kinds) if groups else None


def _format_phone(digits: str) -> str | None:
    """Telephone (10 or 11 digits, 7 local), US social security (9) and card (14-16) groupings."""
    if len(digits) in (14, 15):
        return f"{digits[:4]} {digits[4:10]} {digits[10:]}"
    if len(digits) == 16:
        return " ".join(digits[k : k + 4] for k in range(0, 16, 4))
    if len(digits) == 10:
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    if len(digits) == 11:
        return f"{digits[0]} {digits[1:4]}-{digits[4:7]}-{digits[7:]}"
    if len(digits) == 9:
        return f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"
    if len(digits) == 7:
        return f"{digits[:3]}-{digits[3:]}"
    return None


def _telephone(t: _Text, i: int, limit: int) -> Match | None:
    if t.words[i] == "plus":
        found = _digit_groups(t, i + 1, limit)
        if found is None or len(found[1]) != 1 or len(found[1][0]) <= 10:
            return None
        digits = found[1][0]
        local = _format_phone(digits[-10:])
        return found[0], f"+{digits[:-10]} {local}"
    if t.words[i] in ("o", "oh") and (i + 1 >= limit or t.words[i + 1] not in DIGIT_WORDS):
        return None
    found = _digit_groups(t, i, limit)
    if found is None:
        return None
    end, groups, kinds = found
    if len(groups) == 4:
        if all(len(g) <= 3 for g in groups):
            return end, ".".join(groups)
        return None
    if len(groups) != 1:
        return None
    digits, kind = groups[0], kinds[0]
    if len(kind) < 2 or ("2" in kind and len(digits) < 7):
        return None
    return end, _format_phone(digits) or _split_code_and_number(t.words, i, end) or digits


def _split_code_and_number(words: list[str], i: int, end: int) -> str | None:
    """A digit string that fits no grouping: a leading code, then a grouped number.

    Read as NeMo and WeTextProcessing do: plain single digits (three or more)
    before the first "double"/"triple" form a code of their own, and the rest
    is grouped when it is a 10-digit telephone or a card number ("four three two double
    seven ..." -> "432 7732 143214 3005"). Otherwise None: the digits stay whole.
    """
    pieces = parse_pieces(words, i, end)
    if pieces is None or "dd" not in pieces.kinds:
        return None
    cut = pieces.kinds.index("dd")
    if cut < 3 or any(k != "d" for k in pieces.kinds[:cut]):
        return None
    tail = "".join(pieces.parts[cut:])
    if len(tail) not in (10, 14, 15, 16):
        return None
    return f"{''.join(pieces.parts[:cut])} {_format_phone(tail)}"


def _alnum(t: _Text, i: int, limit: int) -> Match | None:
    """Codes mixing spelled letters and numbers: "a b nine" -> ab9, "x three eighty six" -> x386."""
    out: list[str] = []
    has_letter = has_digit = False
    j = i
    while j < min(limit, i + _MAX_CODE_WORDS):
        w = t.words[j]
        pieces = parse_pieces(t.words, j, limit) if w not in ("o", "a") else None
        if pieces is not None:
            out.append(pieces.digits)
            has_digit = True
            j = pieces.end
            continue
        if len(w) == 1 and w.isalpha():
            if w in ("a", "i") and j == i and (j + 1 >= limit or not _is_letter(t.words[j + 1])):
                break
            out.append(w)
            has_letter = True
            j += 1
            continue
        break
    if not (has_letter and has_digit) or j - i < 2:
        return None
    return j, "".join(out)


def _is_letter(w: str) -> bool:
    return len(w) == 1 and w.isalpha()


# --- plain numbers ----------------------------------------------------------------------------

_NOT_ORDINAL_AFTER = {"second": frozenset({"a", "per", "split", "one"}), "first": frozenset({"at"})}


def _ordinal(t: _Text, i: int, limit: int) -> Match | None:
    card = parse_cardinal(t.words, i, limit, allow_ordinal=True)
    if card is None or not card.ordinal:
        return None
    if card.words == 1 and i > 0 and t.words[i - 1] in _NOT_ORDINAL_AFTER.get(t.words[i], frozenset()):
        return None
    return card.end, f"{card.value}{ordinal_suffix(card.value)}"


def _number(t: _Text, i: int, limit: int) -> Match | None:
    """Cardinals and decimals; a lone zero..nine stays a word, as in "one of them"."""
    amount = read_amount(t.words, i, limit)
    if amount is None:
        return None
    end, number, scale = amount
    if scale is not None:
        return end, f"{number} {scale}"
    if end - i == 1 and t.words[i] in DIGIT_WORDS:
        return None
    return end, number


_Matcher = Callable[[_Text, int, int], "Match | None"]

_MATCHERS: list[_Matcher] = [
    _whitelist,
    _electronic,
    lambda t, i, limit: match_date(t.words, t.orig, i, limit),
    lambda t, i, limit: match_time(t.words, i, limit),
    lambda t, i, limit: match_money(t.words, i, limit),
    _ordinal,
    lambda t, i, limit: match_measure(t.words, i, limit),
    _telephone,
    _number,
    _alnum,
]
_MATCHERS_TIME_FIRST = [_MATCHERS[0], _MATCHERS[1], _MATCHERS[3], _MATCHERS[2], *_MATCHERS[4:]]


# After these words "eleven thirty" is a clock time rather than the year 1130.
_TIME_CUES = frozenset(
    [
        "at",
        "by",
        "until",
        "till",
        "around",
        "about",
        "from",
        "before",
        "after",
        "is",
        "it",
        "it's",
        "like",
        "since",
    ]
)


_START_WORDS = (
    _TRIGGER_WORDS
    | MONTHS
    | {"the", "minus", "negative", "plus", "half", "quarter"}
    | {key.split()[0] for key in _WHITELIST}
)


def _best(t: _Text, i: int) -> Match | None:
    limit = t.limits[i]
    w = t.words[i]
    if w not in _START_WORDS and len(w) != 1:
        # Only an e-mail/URL can start at an ordinary word ("google dot com").
        return _electronic(t, i, limit) if t.has_sep else None
    best = _whitelist(t, i, limit)
    if best is not None:
        return best  # fixed spellings ("RTX", "S&P") win over letter-digit codes
    time_first = i > 0 and t.words[i - 1] in _TIME_CUES
    matchers = _MATCHERS_TIME_FIRST if time_first else _MATCHERS
    for matcher in matchers[1:]:
        found = matcher(t, i, limit)
        if found is not None and found[0] > i and (best is None or found[0] > best[0]):
            best = found
    return best


def itn_en(text: str) -> str:
    """Rewrite the spoken-form numbers, dates, times, money, ... in English ``text``."""
    if not text.strip():
        return text.strip()
    t = _split(text)
    if not any(w in _TRIGGER_WORDS or len(w) == 1 for w in t.words):
        return " ".join(lead + w + trail for lead, w, trail in zip(t.lead, t.orig, t.trail, strict=True))
    out: list[str] = []
    i = 0
    n = len(t.words)
    while i < n:
        found = _best(t, i) if t.orig[i] else None
        if found is None:
            out.append(t.lead[i] + t.orig[i] + t.trail[i])
            i += 1
            continue
        end, written = found
        out.append(_with_edges(t.lead[i], written, t.trail[end - 1], " ".join(t.orig[i:end])))
        i = end
    return " ".join(out)


def _with_edges(lead: str, written: str, trail: str, spoken: str) -> str:
    """Put a span's outer punctuation back: stuck to words left as they were, apart from a rewrite.

    NeMo and WeTextProcessing make the marks around a rewritten span tokens of
    their own ("twenty!" -> "20 !", "yahoo!" stays); we write the same, and the
    engine's typography step (:func:`asr_engine.text.itn.attach_punctuation`)
    joins closing marks again in transcripts.
    """
    if written == spoken:
        return lead + written + trail
    return " ".join(part for part in (lead, written, trail) if part)
