"""Chinese numeral parsing for ITN: cardinals, digit strings, decimals and "5 or 6" ranges.

Everything here works on a run of numeral characters (no surrounding text) and
returns the written form, or ``None`` when the run is not a well-formed number,
so callers can leave odd runs ("一五一十", "万一") untouched.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

__all__ = [
    "BIG_CHARS",
    "DIGIT_CHARS",
    "NUMERAL_CHARS",
    "UNIT_CHARS",
    "digit_value",
    "format_cardinal",
    "format_decimal",
    "format_digits",
    "format_number",
    "format_range",
    "normalize_numerals",
    "parse_cardinal",
]

# Variant spellings folded onto one canonical character before parsing.
_VARIANTS = str.maketrans(
    {
        "〇": "零",
        "洞": "零",
        "幺": "一",
        "拐": "七",
        "兩": "两",
        "壹": "一",
        "贰": "二",
        "貳": "二",
        "叁": "三",
        "參": "三",
        "肆": "四",
        "伍": "五",
        "陆": "六",
        "陸": "六",
        "柒": "七",
        "捌": "八",
        "玖": "九",
        "拾": "十",
        "佰": "百",
        "仟": "千",
        "萬": "万",
        "億": "亿",
        "點": "点",
    }
)
_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG_UNITS = (("兆", 10**12), ("亿", 10**8), ("万", 10**4))

DIGIT_CHARS = "零〇一二三四五六七八九幺洞拐两兩壹贰貳叁參肆伍陆陸柒捌玖"
UNIT_CHARS = "十百千拾佰仟"
BIG_CHARS = "万亿兆萬億"
NUMERAL_CHARS = DIGIT_CHARS + UNIT_CHARS + BIG_CHARS


def normalize_numerals(s: str) -> str:
    """Fold variant numerals (幺, 洞, 拐, 壹, 萬, ...) onto the plain simplified set."""
    return s.translate(_VARIANTS)


def digit_value(ch: str) -> int | None:
    """Value of one digit character (after folding variants), else None."""
    return _DIGITS.get(normalize_numerals(ch))


def _section(s: str) -> int | None:
    """Parse a number below 10000 written with 十/百/千 ("三千零五", "一百一" = 110)."""
    if not s:
        return None
    if s == "零":
        return 0
    total = 0
    digit: int | None = None
    prev_unit = 10**5
    zero_since_unit = False
    last_was_unit = False
    for ch in s:
        if ch in _DIGITS:
            value = _DIGITS[ch]
            if digit is not None:
                return None
            if value == 0:
                if last_was_unit is False and total == 0:
                    return None  # leading zero: a digit string, not a cardinal
                zero_since_unit = True
                last_was_unit = False
                continue
            digit = value
            last_was_unit = False
        elif ch in _SMALL_UNITS:
            unit = _SMALL_UNITS[ch]
            if unit >= prev_unit:
                return None
            if digit is None:
                if unit != 10:
                    return None
                digit = 1
            total += digit * unit
            prev_unit = unit
            digit = None
            zero_since_unit = False
            last_was_unit = True
        else:
            return None
    if digit is not None:
        if prev_unit in (100, 1000) and not zero_since_unit and total:
            total += digit * prev_unit // 10  # "一百一" = 110, "一千五" = 1500
        else:
            total += digit
    elif zero_since_unit:
        return None  # trailing 零 ("一百零")
    return total


def parse_cardinal(s: str) -> int | None:
    """Parse a cardinal with 万/亿/兆 groups; None when the run is not a cardinal."""
    s = normalize_numerals(s)
    for ch, value in _BIG_UNITS:
        if ch in s:
            hi_s, lo_s = s.split(ch, 1)
            hi = parse_cardinal(hi_s)
            if hi is None or hi == 0:
                return None
            lo = 0
            if lo_s:
                zero = lo_s.startswith("零")
                lo_s = lo_s.lstrip("零")
                if not lo_s:
                    return None
                if not zero and len(lo_s) == 1 and lo_s in _DIGITS:
                    lo = _DIGITS[lo_s] * value // 10  # "一万六" = 16000
                else:
                    parsed = parse_cardinal(lo_s)
                    if parsed is None or parsed >= value:
                        return None
                    lo = parsed
            return hi * value + lo
    return _section(s)


def format_cardinal(s: str) -> str | None:
    """Written form of a cardinal: digits, keeping 万 above a million and 亿/兆 always."""
    s = normalize_numerals(s)
    for ch, value in _BIG_UNITS:
        if ch not in s:
            continue
        hi_s, lo_s = s.split(ch, 1)
        total = parse_cardinal(s)
        if total is None:
            return None
        if ch == "万":
            hi = parse_cardinal(hi_s)
            if hi is None:
                return None
            if hi < 100:
                return str(total)
            lo = total - hi * value
            return f"{hi}万{lo if lo else ''}"
        hi_fmt = format_cardinal(hi_s)
        if hi_fmt is None:
            return None
        lo_s = lo_s.lstrip("零")
        if not lo_s:
            return f"{hi_fmt}{ch}"
        hi_value = parse_cardinal(hi_s) or 0
        lo_fmt = format_cardinal(lo_s) if "万" in lo_s or "亿" in lo_s else str(total - hi_value * value)
        return f"{hi_fmt}{ch}{lo_fmt}"
    small = _section(s)
    return None if small is None else str(small)


def format_digits(s: str) -> str | None:
    """Digit-by-digit reading ("幺三五零" -> "1350"); None if a unit character occurs."""
    out = []
    for ch in normalize_numerals(s):
        if ch not in _DIGITS:
            return None
        out.append(str(_DIGITS[ch]))
    return "".join(out)


def format_decimal(s: str) -> str | None:
    """ "三点一四" -> "3.14"; a trailing 万/亿 stays as a word ("二十点一万" -> "20.1万")."""
    s = normalize_numerals(s)
    if "点" not in s:
        return None
    int_s, frac_s = s.split("点", 1)
    big = ""
    if frac_s and frac_s[-1] in "万亿":
        frac_s, big = frac_s[:-1], frac_s[-1]
    int_fmt = format_cardinal(int_s) if int_s != "零" else "0"
    if int_fmt is None and len(int_s) == 1:
        int_fmt = format_digits(int_s)
    frac = format_digits(frac_s) if frac_s else None
    if int_fmt is None or frac is None or not int_fmt.isdigit():
        return None
    return f"{int_fmt}.{frac}{big}"


def _range_pair(a: str, b: str) -> tuple[int, int] | None:
    """Two adjacent digits read as an estimate: 三四, 七八, and the idiomatic 三五."""
    va, vb = _DIGITS.get(a), _DIGITS.get(b)
    if va is None or vb is None or va == 0 or a == "两" or b == "两":
        return None
    if vb == va + 1 or (va, vb) == (3, 5):
        return va, vb
    return None


def format_range(s: str) -> str | None:
    """Estimates: "三五百" -> "300~500", "三四十万" -> "30~40万", "十五六" -> "15-6".

    A cardinal prefix scales the pair by the next smaller unit: "一万六七" -> "16000-7000".
    """
    s = normalize_numerals(s)
    big = ""
    if s and s[-1] in "万亿" and len(s) > 1:
        s, big = s[:-1], s[-1]
    if len(s) < 2:
        return None
    # Form 1: the pair leads ("三五百", "五六十", "七八").
    pair = _range_pair(s[0], s[1])
    if pair is not None:
        rest = s[2:]
        if rest and rest not in _SMALL_UNITS:
            return None
        unit = _SMALL_UNITS.get(rest, 1)
        return f"{pair[0] * unit}~{pair[1] * unit}{big}"
    # Form 2: a cardinal prefix then the pair ("十五六", "七百三四十", "一万六七").
    tail_unit = 1
    core = s
    if core[-1] in _SMALL_UNITS:
        tail_unit = _SMALL_UNITS[core[-1]]
        core = core[:-1]
    if len(core) < 3:
        return None
    pair = _range_pair(core[-2], core[-1])
    prefix_s = core[:-2]
    if pair is None or not prefix_s or prefix_s[-1] not in "十百千万":
        return None
    prefix = parse_cardinal(prefix_s)
    if prefix is None:
        return None
    if tail_unit == 1:
        last = prefix_s[-1]
        tail_unit = 1000 if last == "万" else max(_SMALL_UNITS.get(last, 10) // 10, 1)
    elif _SMALL_UNITS.get(prefix_s[-1], 10**4) <= tail_unit:
        return None
    return f"{prefix + pair[0] * tail_unit}-{pair[1] * tail_unit}{big}"


def format_number(s: str) -> str | None:
    """Best written form of a numeral run: decimal, cardinal, digit string or estimate."""
    s = normalize_numerals(s)
    if "点" in s:
        return format_decimal(s)
    if all(ch in _DIGITS for ch in s):
        return format_digits(s)
    value = format_cardinal(s)
    if value is not None:
        return value
    return format_range(s)
