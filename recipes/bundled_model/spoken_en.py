"""English numbers, dates, times, money and phone numbers in the spoken form a recogniser hears.

The model is trained on spoken form only ("twenty five dollars"); the engine's ITN writes "$25" later, so
these forms follow what ``asr_engine.text.itn_en`` parses (lower case, "a m"/"p m", "oh" for zero).
"""

from __future__ import annotations

import random

ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
ORD_SPECIAL = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
MONTHS = [
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
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def below_hundred(n: int) -> str:
    if n < 10:
        return ONES[n]
    if n < 20:
        return TEENS[n - 10]
    tens, ones = divmod(n, 10)
    return TENS[tens] + ("" if ones == 0 else " " + ONES[ones])


def below_thousand(n: int, use_and: bool = False) -> str:
    hundreds, rest = divmod(n, 100)
    parts = []
    if hundreds:
        parts.append(ONES[hundreds] + " hundred")
        if rest and use_and:
            parts.append("and")
    if rest or not hundreds:
        parts.append(below_hundred(rest))
    return " ".join(parts)


def cardinal(n: int, use_and: bool = False) -> str:
    """Cardinal number words, e.g. 1205 -> "one thousand two hundred five"."""
    if n < 0:
        return "minus " + cardinal(-n, use_and)
    if n == 0:
        return "zero"
    parts = []
    for value, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand")):
        if n >= value:
            q, n = divmod(n, value)
            parts.append(below_thousand(q) + " " + name)
    if n:
        parts.append(below_thousand(n, use_and))
    return " ".join(parts)


def ordinal(n: int) -> str:
    words = cardinal(n).split()
    last = words[-1]
    if last in ORD_SPECIAL:
        words[-1] = ORD_SPECIAL[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def year(y: int, rng: random.Random) -> str:
    """Years as people say them: "nineteen ninety four", "twenty twelve", "two thousand five"."""
    hi, lo = divmod(y, 100)
    if 2000 <= y <= 2009 or (y % 1000 == 0):
        return cardinal(y)
    if 2010 <= y <= 2099 and rng.random() < 0.35:
        return cardinal(y)
    if lo == 0:
        return below_hundred(hi) + " hundred"
    if lo < 10:
        return below_hundred(hi) + " oh " + ONES[lo]
    return below_hundred(hi) + " " + below_hundred(lo)


def date(rng: random.Random) -> str:
    m = rng.choice(MONTHS)
    d = rng.randint(1, 28)
    style = rng.random()
    if style < 0.4:
        s = f"{m} {ordinal(d)}"
    elif style < 0.7:
        s = f"the {ordinal(d)} of {m}"
    else:
        s = f"{m} {ordinal(d)} {year(rng.randint(1950, 2040), rng)}"
    return s


def clock(rng: random.Random) -> str:
    h = rng.randint(1, 12)
    m = rng.choice([0, 0, 5, 10, 15, 20, 30, 30, 45, rng.randint(1, 59)])
    hw = cardinal(h)
    r = rng.random()
    if m == 0:
        s = hw + (" o'clock" if r < 0.4 else "")
    elif r < 0.12 and m in (15, 30, 45):
        s = {15: "quarter past ", 30: "half past ", 45: "quarter to "}[m] + (
            cardinal(h % 12 + 1) if m == 45 else hw
        )
        return s
    elif m < 10:
        s = f"{hw} oh {ONES[m]}"
    else:
        s = f"{hw} {below_hundred(m)}"
    if rng.random() < 0.6 and not s.endswith("o'clock"):
        s += rng.choice([" a m", " p m"])
    return s


def money(rng: random.Random) -> str:
    unit, cents_unit = rng.choice(
        [("dollars", "cents"), ("dollars", "cents"), ("euros", "cents"), ("pounds", "pence"), ("yuan", "")]
    )
    amount = rng.choice(
        [rng.randint(2, 99), rng.randint(100, 999), rng.randint(1000, 99999), rng.randint(2, 20)]
    )
    s = f"{cardinal(amount)} {unit}"
    if cents_unit and rng.random() < 0.35:
        c = rng.randint(2, 99)
        s += f" and {cardinal(c)} {cents_unit}"
    return s


def percent(rng: random.Random) -> str:
    if rng.random() < 0.25:
        return f"{cardinal(rng.randint(0, 99))} point {ONES[rng.randint(1, 9)]} percent"
    return f"{cardinal(rng.randint(1, 100))} percent"


def decimal(rng: random.Random) -> str:
    digits = " ".join(ONES[rng.randint(0, 9)] for _ in range(rng.randint(1, 2)))
    return f"{cardinal(rng.randint(0, 999))} point {digits}"


def digit_word(d: int, rng: random.Random) -> str:
    return "oh" if d == 0 and rng.random() < 0.5 else ONES[d]


def phone(rng: random.Random) -> str:
    groups = rng.choice([(3, 3, 4), (3, 4), (4, 4), (3, 3, 3)])
    out: list[str] = []
    for g in groups:
        out.extend(digit_word(rng.randint(0, 9), rng) for _ in range(g))
    return " ".join(out)


def quantity(rng: random.Random) -> str:
    n = rng.choice([rng.randint(2, 20), rng.randint(21, 100), rng.randint(100, 2000)])
    return cardinal(n, use_and=rng.random() < 0.3)
