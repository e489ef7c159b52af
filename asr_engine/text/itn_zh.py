"""Mandarin inverse text normalization: spoken numerals in, Arabic digits and symbols out.

The text goes through an ordered list of regex passes, most specific first
(plates, dates, times, fractions, money, measures, maths) and the plain number
pass last. A pass writes ASCII, so later passes, which only match Chinese
numerals, never touch what an earlier one produced. Idioms that contain
numerals are swapped for private-use placeholders first and restored last.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from asr_engine.text.itn_options import DEFAULT_OPTIONS, ItnOptions
from asr_engine.text.itn_zh_numbers import (
    DIGIT_CHARS,
    NUMERAL_CHARS,
    digit_value,
    format_cardinal,
    format_digits,
    format_number,
    format_range,
    normalize_numerals,
    parse_cardinal,
)

logger = logging.getLogger(__name__)

__all__ = ["itn_zh"]

_D = f"[{DIGIT_CHARS}]"
_N = f"[{NUMERAL_CHARS}]"
# A number: cardinal / digits / estimate, optionally with a decimal part ("二十点一万").
_NUM = f"{_N}+(?:[点點]{_D}+[万亿]?)?"
# Matches start only at the beginning of a numeral run (keeps long runs linear).
_S = f"(?<![{NUMERAL_CHARS}])"
# The same, shortest first, for numbers right before a unit ("一千克" is 1 kg, not 1000 g).
_NUMQ = f"{_N}{{1,24}}?(?:[点點]{_D}{{1,24}}?[万亿]?)?"
_CJK = "\u4e00-\u9fff"

# Words that contain numerals but are not numbers; longest first.
_PROTECTED = sorted(
    [
        "三七二十一",
        "一五一十",
        "九九八十一",
        "千千万万",
        "三三两两",
        "十三五",
        "十四五",
        "十二五",
        "一点点",
        "一点一点",
        "一点儿",
        "十之八九",
        "十有八九",
        "一干二净",
        "五花八门",
    ],
    key=len,
    reverse=True,
)
_PROTECT_RE = re.compile(
    "|".join(map(re.escape, _PROTECTED))
    + f"|(?<![点{NUMERAL_CHARS}])十分(?![之钟])|(?<![点{NUMERAL_CHARS}])一一(?![{NUMERAL_CHARS}点])"
    + f"|(?<![{NUMERAL_CHARS}])(?:五一|十一)(?=劳动|假|长假|小长假|黄金周|国庆)"
)
_PLACEHOLDER_BASE = 0xE000
_PLACEHOLDER_RE = re.compile("[\ue000-\ue0ff]")

_INTERJECTION_RE = re.compile("[嗯啊]*呃[呃嗯啊]*")


# Measure words after which a lone 二..九 (and a few after 一) become digits.
def _words(s: str) -> list[str]:
    return s.split()


_CLASSIFIERS = _words(
    "个 人 年 月 天 岁 位 名 本 张 件 台 辆 只 条 种 号 楼 层 周 倍 次 元 块 毛 角 分 秒 帧 盒 篇 页 "
    "章 首 部 集 份 杯 瓶 碗 双 套 间 座 所 栋 项 级 届 轮 场 局 票 点 小时 分钟 星期 礼拜 公斤 斤 "
    "两 吨 克 千克 公里 千米 米 厘米 毫米 升 毫升 度 万 千 百 亿 家 口 颗 棵 枚 粒 台 架 艘 支 把 "
    "道 门 课 遍 趟 圈 步 声 句 段 行 列 排 组 批 届 期 版 代 册 卷 篇 幅 串 对 副 束 群 伙 户 片 "
    "块钱 美元 欧元 英镑 日元 港元"
)
_ONE_CLASSIFIERS = _words(
    "人 年 岁 元 号 楼 层 倍 帧 名 月 万 千 百 亿 美元 块钱 公斤 千克 克 公里 千米 米 厘米 毫米 吨"
)


def _alt(words: list[str]) -> str:
    return "|".join(map(re.escape, sorted(set(words), key=len, reverse=True)))


_CLASSIFIER_ALT = _alt(_CLASSIFIERS)
_ONE_CLASSIFIER_RE = re.compile(f"(?:{_alt(_ONE_CLASSIFIERS)})")
_CLASSIFIER_RE = re.compile(f"(?:{_CLASSIFIER_ALT})")

_CURRENCIES = {
    "人民币": "CNY",
    "美元": "$",
    "美金": "$",
    "澳元": "A$",
    "港元": "HKD",
    "港币": "HKD",
    "英镑": "£",
    "欧元": "€",
    "日元": "JPY",
    "韩元": "₩",
    "印度卢布": "₹",
    "卢布": "₽",
    "新台币": "TWD",
    "马来西亚令吉": "RM",
    "加元": "C$",
    "元": "¥",
}
_UNITS = {
    "千克": "kg",
    "公斤": "kg",
    "克": "g",
    "毫克": "mg",
    "千米": "km",
    "公里": "km",
    "厘米": "cm",
    "毫米": "mm",
    "米": "m",
    "平方米": "m²",
    "平方公里": "km²",
    "平方千米": "km²",
    "立方米": "m³",
    "摄氏度": "°C",
    "华氏度": "°F",
    "度": "°",
    "千瓦时": "kwh",
    "千瓦": "kw",
    "伏特": "v",
    "摩尔": "mol",
    "毫秒": "ms",
    "秒": "s",
    "分钟": "min",
    "毫升": "ml",
    "升": "l",
    "赫兹": "hz",
    "千赫兹": "khz",
    "兆赫兹": "mhz",
}
_AM_WORDS = {"上午": "a.m.", "早上": "a.m.", "早晨": "a.m.", "凌晨": "a.m.", "清晨": "a.m."}
_PM_WORDS = {"下午": "p.m.", "晚上": "p.m.", "傍晚": "p.m.", "夜里": "p.m.", "中午": "p.m."}
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"

_Handler = Callable[[re.Match[str], ItnOptions], str]


def _num(s: str) -> str | None:
    """Written form of a number token (cardinal, decimal, digits or estimate)."""
    return format_number(s)


def _value(s: str) -> int | None:
    """Integer value of a small cardinal (hours, months, days)."""
    return parse_cardinal(s)


# --- passes -----------------------------------------------------------------------------------


def _plate(m: re.Match[str], _: ItnOptions) -> str:
    body = m.group(3)
    if not any(ch in DIGIT_CHARS for ch in body):
        return m.group(0)
    digits = "".join(str(digit_value(ch)) if ch in DIGIT_CHARS else ch for ch in body)
    return m.group(1) + m.group(2) + digits


_TRAIN_LETTERS = {"高": "G", "动": "D", "特": "T", "快": "K", "直": "Z"}


def _train(m: re.Match[str], _: ItnOptions) -> str:
    digits = format_digits(m.group(2))
    return m.group(0) if digits is None else _TRAIN_LETTERS[m.group(1)] + digits


def _ip(m: re.Match[str], _: ItnOptions) -> str:
    parts = [format_number(p) for p in re.split("[点點]", m.group(0))]
    if any(p is None or not p.isdigit() for p in parts):
        return m.group(0)
    return ".".join(p for p in parts if p is not None)


_MONTH = "(?:十[一二]?|[一二三四五六七八九])"
_DAY = "(?:三十一?|二十[一二三四五六七八九]?|十[一二三四五六七八九]?|[一二三四五六七八九])"


def _date(m: re.Match[str], opts: ItnOptions) -> str:
    year_s, month_s, day_s, day_word = m.group(1), m.group(2), m.group(3), m.group(4)
    year = format_digits(year_s) if year_s else None
    month = _value(month_s) if month_s else None
    day = _value(day_s) if day_s else None
    if opts.zh_date_style == "slash" and month is not None and (year is not None or day is not None):
        parts = [year] if year is not None else []
        parts.append(f"{month:02d}")
        if day is not None:
            parts.append(f"{day:02d}")
        return "/".join(p for p in parts if p is not None)
    out = ""
    if year is not None:
        out += f"{year}年"
    if month is not None:
        out += f"{month}月"
    if day is not None:
        out += f"{day}{day_word}"
    return out


_HOUR = "(?:二十[一二三四]?|十[一二三四五六七八九]?|[零一二两三四五六七八九])"
_MIN = (
    "(?:零[一二三四五六七八九]|[二三四五]十[一二三四五六七八九]?"
    "|十[一二三四五六七八九]?|[一二三四五六七八九])"
)


def _time(m: re.Match[str], opts: ItnOptions) -> str:
    prefix, hour_s, minute_s, fen, second_s = m.groups()
    hour = _value(hour_s)
    if minute_s == "半":
        minute: int | None = 30
    elif minute_s.endswith("刻"):
        minute = 15 * (_value(minute_s[0]) or 0)
    else:
        minute = _value(minute_s) if not minute_s.startswith("零") else _value(minute_s[1:])
    # Without 分, a bare "三点零五" is a decimal unless a time-of-day word came first.
    if not fen and not prefix and minute_s.startswith("零"):
        return m.group(0)
    if not fen and not prefix and minute_s not in ("半",) and "十" not in minute_s and "刻" not in minute_s:
        return m.group(0)
    if hour is None or minute is None or hour > 24 or minute > 59:
        return m.group(0)
    clock = f"{hour:02d}" if hour == 0 else str(hour)
    clock += f":{minute:02d}"
    if second_s:
        second = _value(second_s) if not second_s.startswith("零") else _value(second_s[1:])
        if second is None or second > 59:
            return m.group(0)
        clock += f":{second:02d}"
    if not prefix:
        return clock
    if opts.zh_ampm_style == "suffix":
        return clock + (_AM_WORDS.get(prefix) or _PM_WORDS.get(prefix) or "")
    return prefix + clock


def _fraction(m: re.Match[str], _: ItnOptions) -> str:
    sign, den_s, num_s = m.groups()
    den, num = format_number(den_s), format_number(num_s)
    if den is None or num is None:
        return m.group(0)
    return ("-" if sign else "") + f"{num}/{den}"


def _percent_value(s: str) -> str | None:
    return "100" if s == "百" else format_number(s)


def _percent(m: re.Match[str], _: ItnOptions) -> str:
    sign, first, second = m.groups()
    a = _percent_value(first)
    b = _percent_value(second) if second else None
    if a is None or (second and b is None):
        return m.group(0)
    sign_out = {"负": "-", "负的": "-", "正负": "±"}.get(sign or "", "")
    return f"{sign_out}{a}~{b}%" if b is not None else f"{sign_out}{a}%"


def _money(m: re.Match[str], _: ItnOptions) -> str:
    sign, amount_s, currency = m.groups()
    amount = _amount(amount_s)
    if amount is None:
        return m.group(0)
    return ("-" if sign else "") + _CURRENCIES[currency] + amount


def _yuan_jiao_fen(m: re.Match[str], _: ItnOptions) -> str:
    yuan_s, jiao_s, fen_s = m.groups()
    yuan = format_cardinal(yuan_s)
    jiao = digit_value(jiao_s)
    fen = digit_value(fen_s) if fen_s else None
    if yuan is None or jiao is None or not yuan.isdigit():
        return m.group(0)
    return f"¥{yuan}.{jiao}{fen if fen is not None else ''}"


def _kuai(m: re.Match[str], _: ItnOptions) -> str:
    amount, small = format_number(m.group(1)), digit_value(m.group(2))
    if amount is None or small is None:
        return m.group(0)
    return f"{amount}块{small}"


def _amount(s: str) -> str | None:
    """A number before a unit: two adjacent digits are an estimate there ("七八公斤" -> 7~8)."""
    if len(s) == 2 and "点" not in s:
        estimate = format_range(s)
        if estimate is not None:
            return estimate
    return format_number(s)


def _range_or_number(s: str) -> str | None:
    if "到" in s:
        a_s, b_s = s.split("到", 1)
        a, b = _amount(a_s), _amount(b_s)
        return None if a is None or b is None else f"{a}~{b}"
    return _amount(s)


def _speed(m: re.Match[str], _: ItnOptions) -> str:
    amount = _range_or_number(m.group("a1") or m.group("a2"))
    return m.group(0) if amount is None else f"{amount}km/h"


def _measure(m: re.Match[str], _: ItnOptions) -> str:
    sign, amount_s, unit = m.groups()
    if amount_s in ("一", "幺") and unit in ("度", "分钟", "秒"):
        return m.group(0)  # 一度 (once), 一分钟 reads better as words
    amount = _range_or_number(amount_s)
    if amount is None:
        return m.group(0)
    return ("-" if sign else "") + amount + _UNITS[unit]


_MATH_OPS = {"加": "+", "减": "-", "乘以": "×", "除以": "÷", "等于": "=", "比": ":"}
_OPERAND = f"(?:正负|负)?{_NUM}"
_MATH_SPLIT_RE = re.compile(f"({_alt(list(_MATH_OPS))})")


def _operand(s: str) -> str | None:
    sign = ""
    if s.startswith("正负"):
        sign, s = "±", s[2:]
    elif s.startswith("负"):
        sign, s = "-", s[1:]
    value = format_number(s)
    return None if value is None else sign + value


def _math(m: re.Match[str], _: ItnOptions) -> str:
    pieces = _MATH_SPLIT_RE.split(m.group(0))
    out = []
    for i, piece in enumerate(pieces):
        if i % 2:
            out.append(_MATH_OPS[piece])
            continue
        value = _operand(piece)
        if value is None:
            return m.group(0)
        out.append(value)
    return "".join(out)


def _between(m: re.Match[str], _: ItnOptions) -> str:
    a, b = format_number(m.group(1)), format_number(m.group(2))
    return m.group(0) if a is None or b is None else f"{a}~{b}"


def _number(m: re.Match[str], opts: ItnOptions) -> str:
    sign, run = m.group(1) or "", m.group(2)
    text = m.string
    after = text[m.end() :]
    before = text[: m.start()]
    sign_out = {"负": "-", "正负": "±"}.get(sign, "")
    core = normalize_numerals(run)
    suffix = ""
    if len(core) > 1 and core.endswith("两") and core[-2] in "零一二三四五六七八九" and "点" not in core:
        core, suffix = core[:-1], "两"  # "二两": 两 is the weight unit here
        after = "两" + after
    has_classifier = bool(_CLASSIFIER_RE.match(after)) or bool(suffix)
    if len(core) == 1 and not sign:
        if not opts.zh_single_digits and core != "十":
            return m.group(0)
        if before.endswith(("第", "星期", "周", "礼拜", "初")):
            return m.group(0)
        bounded_left = opts.zh_standalone_numbers and (not before or not re.match(f"[{_CJK}]", before[-1]))
        bounded_right = opts.zh_standalone_numbers and (not after or not re.match(f"[{_CJK}]", after[0]))
        if core == "零":
            ok = bounded_left and bounded_right
        elif core == "一":
            ok = bool(_ONE_CLASSIFIER_RE.match(after)) or (bounded_left and bounded_right)
        else:
            bounded = bounded_left or before.endswith("是")
            ok = has_classifier or (bounded and bounded_right)
        if not ok:
            return m.group(0)
    elif not opts.zh_standalone_numbers and not has_classifier and not sign and "点" not in core:
        return m.group(0)
    if len(core) == 2 and all(ch in "零一二三四五六七八九两" for ch in core):
        # Two bare digits: an estimate before a measure word ("五六个"), else usually words ("一二").
        estimate = format_range(core) if has_classifier else None
        if estimate is not None:
            return sign_out + estimate + suffix
        if "零" not in core:
            return m.group(0)
    value = format_number(core)
    if value is None:
        return m.group(0)
    return sign_out + value + suffix


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_PASSES: list[tuple[re.Pattern[str], _Handler]] = [
    (
        _compile(
            f"([{_PROVINCES}])([A-Za-z])([A-Za-z0-9{DIGIT_CHARS}]{{4,6}})(?![A-Za-z0-9{NUMERAL_CHARS}])"
        ),
        _plate,
    ),
    (_compile(f"(?<![{_CJK}])([高动特快直])({_D}{{2,4}})(?![{NUMERAL_CHARS}点])"), _train),
    (_compile(f"{_N}{{1,12}}(?:[点點]{_N}{{1,12}}){{3}}"), _ip),
    (
        _compile(
            f"(?<![{NUMERAL_CHARS}])(?:({_D}{{2,4}})年)?(?<![{NUMERAL_CHARS}])({_MONTH})月(?:({_DAY})([日号]))?"
        ),
        _date,
    ),
    (_compile(f"(?<![{NUMERAL_CHARS}])({_D}{{2,4}})年"), lambda m, o: f"{format_digits(m.group(1))}年"),
    (
        _compile(
            f"({_alt(list(_AM_WORDS) + list(_PM_WORDS))})?(?<![{NUMERAL_CHARS}点])({_HOUR})点"
            f"(半|[一二三]刻|{_MIN})(分)?(?:(?<=分)({_MIN})秒)?"
        ),
        _time,
    ),
    (_compile(f"(负)?{_S}({_NUM})分之({_NUM})"), _fraction),
    (_compile(f"(负的|负|正负)?百分之?({_NUM}|百)(?:到(?:百分之?)?({_NUM}|百))?"), _percent),
    (_compile(f"{_S}({_N}+)元({_D})[角毛](?:({_D})分)?"), _yuan_jiao_fen),
    (_compile(f"(负)?{_S}({_NUMQ})({_alt(list(_CURRENCIES))})"), _money),
    (_compile(f"{_S}({_N}+)块({_D})(?![{NUMERAL_CHARS}])"), _kuai),
    (
        _compile(
            f"每小时(?P<a1>{_NUMQ}(?:到{_NUMQ})?)(?:千米|公里)|{_S}(?P<a2>{_NUMQ}(?:到{_NUMQ})?)(?:千米|公里)每小时"
        ),
        _speed,
    ),
    (_compile(f"(负)?{_S}({_NUMQ}(?:到{_NUMQ})?)({_alt(list(_UNITS))})"), _measure),
    (_compile(f"{_S}{_OPERAND}(?:(?:{_alt(list(_MATH_OPS))}){_OPERAND})+"), _math),
    (_compile(f"{_S}({_NUM})到({_NUM})"), _between),
    (_compile(f"(?<![几{NUMERAL_CHARS}])(正负|负)?({_NUM})(?![几{NUMERAL_CHARS}])"), _number),
]


_DATE_PASS = _PASSES[3]


def zh_date_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, written)`` for every spoken date with a month in ``text``.

    Written with Chinese units (二零二五年三月五号 -> 2025年3月5号) whatever the
    library after us would do; the caller keeps these spans away from it.
    """
    pattern, handler = _DATE_PASS
    return [(m.start(), m.end(), handler(m, DEFAULT_OPTIONS)) for m in pattern.finditer(text)]


def zh_protected_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, original)`` for idioms and words with numerals that must stay (十分, 一点一点, 万一)."""
    return [(m.start(), m.end(), m.group(0)) for m in _PROTECT_RE.finditer(text)]


def itn_zh(text: str, options: ItnOptions = DEFAULT_OPTIONS) -> str:
    """Rewrite the spoken-form numbers in Mandarin ``text`` to written form."""
    if not any(ch in NUMERAL_CHARS or ch == "呃" for ch in text):
        return text
    text = _INTERJECTION_RE.sub("", text)
    saved: list[str] = []

    def _protect(m: re.Match[str]) -> str:
        saved.append(m.group(0))
        return chr(_PLACEHOLDER_BASE + len(saved) - 1)

    text = _PROTECT_RE.sub(_protect, text)
    for pattern, handler in _PASSES:
        text = pattern.sub(lambda m, h=handler: h(m, options), text)  # type: ignore[misc]
    if saved:
        text = _PLACEHOLDER_RE.sub(lambda m: saved[ord(m.group(0)) - _PLACEHOLDER_BASE], text)
    return text
