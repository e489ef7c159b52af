"""Mandarin numbers, dates, times, money, percentages and phone numbers in spoken (character) form.

Spoken form only ("二零二五年三月五号", "百分之十五"); ``asr_engine.text.itn_zh`` turns them into digits.
"""

from __future__ import annotations

import random

DIGITS = "零一二三四五六七八九"


def _below_10k(n: int, lead: bool) -> str:
    out = ""
    zero = False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d, n = divmod(n, value)
        if d:
            if zero:
                out += "零"
                zero = False
            if value == 10 and d == 1 and not out and lead:
                out += "十"
            else:
                out += DIGITS[d] + unit
        elif out:
            zero = True
    return out


def cardinal(n: int, liang: bool = False) -> str:
    """Chinese cardinal, e.g. 12050 -> 一万二千零五十; ``liang`` says 两 for a leading 2 (两千, 两万)."""
    if n == 0:
        return "零"
    parts = []
    high, low = divmod(n, 10000)
    if high:
        parts.append(_below_10k(high, True) + "万")
        if 0 < low < 1000:
            parts.append("零")
    if low:
        parts.append(_below_10k(low, not high))
    s = "".join(parts)
    if liang and n >= 100 and s.startswith("二"):
        s = "两" + s[1:]
    return s


def digits(s: str, yao: bool = False) -> str:
    return "".join(("幺" if yao and c == "1" else DIGITS[int(c)]) for c in s)


def year(rng: random.Random) -> str:
    return digits(str(rng.randint(1950, 2040))) + "年"


def date(rng: random.Random) -> str:
    m = rng.randint(1, 12)
    d = rng.randint(1, 28 if m == 2 else 30)
    s = cardinal(m) + "月" + cardinal(d) + rng.choice(["号", "号", "日"])
    r = rng.random()
    if r < 0.35:
        s = year(rng) + s
    return s


def clock(rng: random.Random) -> str:
    h = rng.randint(1, 12)
    hour = "两" if h == 2 else cardinal(h)
    prefix = rng.choice(["", "", "早上", "上午", "中午", "下午", "晚上"])
    m = rng.choice([0, 0, 15, 30, 30, 45, 5, 10, 20, rng.randint(1, 59)])
    if m == 0:
        return prefix + hour + rng.choice(["点", "点钟"])
    if m == 30 and rng.random() < 0.5:
        return prefix + hour + "点半"
    if m == 15 and rng.random() < 0.4:
        return prefix + hour + "点一刻"
    mm = ("零" + cardinal(m)) if m < 10 else cardinal(m)
    return prefix + hour + "点" + mm + rng.choice(["分", ""])


def money(rng: random.Random) -> str:
    n = rng.choice([rng.randint(2, 99), rng.randint(100, 999), rng.randint(1000, 99999)])
    r = rng.random()
    if r < 0.35:
        return cardinal(n, liang=True) + "块钱"
    if r < 0.55:
        return cardinal(n, liang=True) + "元"
    if r < 0.7:
        return cardinal(rng.randint(2, 99)) + "块" + DIGITS[rng.randint(1, 9)]
    return cardinal(n, liang=True) + rng.choice(["美元", "欧元", "块"])


def percent(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return "百分之" + cardinal(rng.randint(0, 99)) + "点" + DIGITS[rng.randint(1, 9)]
    return "百分之" + cardinal(rng.randint(1, 100))


def decimal(rng: random.Random) -> str:
    return cardinal(rng.randint(0, 999)) + "点" + digits(str(rng.randint(1, 99)))


def phone(rng: random.Random) -> str:
    if rng.random() < 0.6:
        s = "1" + rng.choice("3456789") + "".join(str(rng.randint(0, 9)) for _ in range(9))
    else:
        s = "".join(str(rng.randint(0, 9)) for _ in range(rng.choice([7, 8])))
    return digits(s, yao=rng.random() < 0.4)


def quantity(rng: random.Random) -> str:
    n = rng.choice([rng.randint(2, 10), rng.randint(11, 100), rng.randint(100, 20000)])
    return cardinal(n, liang=rng.random() < 0.5)
