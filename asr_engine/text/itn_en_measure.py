"""English amounts with a unit or a currency: "two hundred kilometers per hour" -> "200 km/h", "$4.69"."""

from __future__ import annotations

import logging
import re

from asr_engine.text.itn_en_numbers import SCALES, parse_cardinal, parse_decimal, parse_pieces

logger = logging.getLogger(__name__)

__all__ = ["match_measure", "match_money", "read_amount"]

Match = tuple[int, str]

_PREFIX_RE = re.compile(r"\b(kilo|mega|giga|tera|peta|milli|micro|nano|centi|deci) ")

# Base units: spoken singular, spoken plural, written symbol.
_BASE_UNITS = [
    ("meter", "meters", "m"),
    ("metre", "metres", "m"),
    ("kilometer", "kilometers", "km"),
    ("kilometre", "kilometres", "km"),
    ("centimeter", "centimeters", "cm"),
    ("millimeter", "millimeters", "mm"),
    ("micrometer", "micrometers", "μm"),
    ("nanometer", "nanometers", "nm"),
    ("decimeter", "decimeters", "dm"),
    ("mile", "miles", "mi"),
    ("foot", "feet", "ft"),
    ("inch", "inches", "in"),
    ("yard", "yards", "yd"),
    ("gram", "grams", "g"),
    ("kilogram", "kilograms", "kg"),
    ("milligram", "milligrams", "mg"),
    ("ton", "tons", "t"),
    ("tonne", "tonnes", "t"),
    ("ounce", "ounces", "oz"),
    ("pound", "pounds", "lb"),
    ("liter", "liters", "l"),
    ("litre", "litres", "l"),
    ("milliliter", "milliliters", "ml"),
    ("kiloliter", "kiloliters", "kl"),
    ("hour", "hours", "h"),
    ("minute", "minutes", "min"),
    ("second", "seconds", "s"),
    ("volt", "volts", "v"),
    ("millivolt", "millivolts", "mv"),
    ("kilovolt", "kilovolts", "kv"),
    ("watt", "watts", "W"),
    ("kilowatt", "kilowatts", "kW"),
    ("megawatt", "megawatts", "mW"),
    ("gigawatt", "gigawatts", "gW"),
    ("kilowatt hour", "kilowatt hours", "kWh"),
    ("megawatt hour", "megawatt hours", "mWh"),
    ("gigawatt hour", "gigawatt hours", "gWh"),
    ("hertz", "hertz", "hz"),
    ("kilohertz", "kilohertz", "khz"),
    ("megahertz", "megahertz", "mhz"),
    ("gigahertz", "gigahertz", "ghz"),
    ("byte", "bytes", "b"),
    ("kilobyte", "kilobytes", "kb"),
    ("megabyte", "megabytes", "mb"),
    ("gigabyte", "gigabytes", "gb"),
    ("terabyte", "terabytes", "tb"),
    ("petabyte", "petabytes", "pb"),
    ("kilobit", "kilobits", "kb"),
    ("megabit", "megabits", "mb"),
    ("gigabit", "gigabits", "gb"),
    ("lumen", "lumens", "lm"),
    ("hectare", "hectares", "ha"),
    ("astronomical unit", "astronomical units", "au"),
    ("horsepower", "horsepower", "hp"),
    ("c c", "c c", "cc"),
    ("kilocalorie", "kilocalories", "kcal"),
    ("calorie", "calories", "cal"),
    ("megasiemens", "megasiemens", "ms"),
    ("kilogram force", "kilograms force", "kgf"),
    ("percent", "percent", "%"),
    ("degree", "degrees", "°"),
    ("degree celsius", "degrees celsius", "°C"),
    ("degree fahrenheit", "degrees fahrenheit", "°F"),
    ("acre", "acres", "ac"),
    ("kilopascal", "kilopascals", "kpa"),
    ("decibel", "decibels", "db"),
]
_SPECIAL = {
    "square feet": "sq ft",
    "square foot": "sq ft",
    "square mile": "sq mi",
    "square miles": "sq mi",
    "miles per hour": "mph",
    "mile per hour": "mph",
}


def _build_units() -> dict[str, str]:
    units: dict[str, str] = {}
    for singular, plural, symbol in _BASE_UNITS:
        units[singular] = units[plural] = symbol
        if symbol.isalpha() and symbol not in ("hp", "cal", "kcal", "au", "ha", "lb", "oz", "t"):
            for power, mark in (("square", "²"), ("cubic", "³")):
                units[f"{power} {singular}"] = units[f"{power} {plural}"] = symbol + mark
    units.update(_SPECIAL)
    return units


_UNITS = _build_units()
_MAX_UNIT_WORDS = 4


def _unit(words: list[str], i: int, limit: int, *, per: bool = False) -> Match | None:
    """Longest unit phrase at ``words[i]``, with a "per <unit>" tail ("kilograms force per square meter")."""
    best: Match | None = None
    for n in range(min(_MAX_UNIT_WORDS, limit - i), 0, -1):
        key = _PREFIX_RE.sub(r"\1", " ".join(words[i : i + n]))
        if key in _UNITS:
            best = (i + n, _UNITS[key])
            break
    if best is None:
        return None
    end, symbol = best
    if not per and end + 1 < limit and words[end] == "per" and "/" not in symbol:
        tail = _unit(words, end + 1, limit, per=True)
        if tail:
            return tail[0], f"{symbol}/{tail[1]}"
    return best


def read_amount(words: list[str], i: int, limit: int) -> tuple[int, str, str | None] | None:
    """A quantity: optional minus, then a decimal or cardinal; returns (end, digits, scale word)."""
    sign = ""
    j = i
    if words[i] in ("minus", "negative") and i + 1 < limit:
        sign, j = "-", i + 1
    dec = parse_decimal(words, j, limit)
    card = parse_cardinal(words, j, limit)
    if dec is not None and (card is None or dec.end > card.end):
        return dec.end, sign + dec.text, dec.scale_word
    if card is None:
        return None
    if card.scale_word is not None and card.scale_word != "thousand":
        return card.end, sign + str(card.scale_coef), card.scale_word
    return card.end, sign + str(card.value), None


def match_measure(words: list[str], i: int, limit: int) -> Match | None:
    """ "<amount> <unit>" and "<amount> per <unit>"."""
    amount = read_amount(words, i, limit)
    if amount is None:
        return None
    end, number, scale = amount
    if scale is not None:
        number = f"{number} {scale}"
    if end < limit and words[end] == "per":
        tail = _unit(words, end + 1, limit, per=True)
        if tail:
            return tail[0], f"{number} /{tail[1]}"
        return None
    unit = _unit(words, end, limit)
    if unit is None:
        return None
    return unit[0], f"{number} {unit[1]}"


_CURRENCIES = {
    "dollar": "$",
    "dollars": "$",
    "united states dollar": "$",
    "united states dollars": "$",
    "us dollars": "$",
    "euro": "€",
    "euros": "€",
    "yen": "¥",
    "won": "₩",
    "rupee": "₹",
    "rupees": "₹",
    "pound sterling": "£",
    "pounds sterling": "£",
    "british pounds": "£",
    "yuan": "yuan",
    "renminbi": "yuan",
}
_CENTS = ("cent", "cents")


def _currency(words: list[str], i: int, limit: int) -> tuple[int, str, str] | None:
    for n in (3, 2, 1):
        if i + n <= limit:
            key = " ".join(words[i : i + n])
            if key in _CURRENCIES:
                return i + n, _CURRENCIES[key], key
    return None


def _money_amount(words: list[str], i: int, limit: int) -> tuple[int, str, str | None] | None:
    """Amount before a currency; also "one fifty five" (= 155) spoken in pieces."""
    amount = read_amount(words, i, limit)
    pieces = parse_pieces(words, i, limit)
    if (
        pieces is not None
        and len(pieces.parts) == 2
        and pieces.kinds == ("d", "2")
        and pieces.parts[0] != "0"
        and (amount is None or pieces.end > amount[0])
    ):
        return pieces.end, pieces.digits, None
    return amount


def match_money(words: list[str], i: int, limit: int) -> Match | None:
    """Currency amounts: "twenty five dollars" -> "$25", "eleven dollars and fifty one cents" -> "$11.51"."""
    amount = _money_amount(words, i, limit)
    if amount is None:
        return None
    end, number, scale = amount
    if end < limit and words[end] in _CENTS:
        if (
            number.isdigit()
            and int(number) < 100
            and not scale
            and not (number == "1" and words[end] == "cents")
        ):
            return end + 1, f"$0.{int(number):02d}"
        return None
    cur = _currency(words, end, limit)
    if cur is None:
        return None
    cur_end, symbol, spoken = cur
    if number == "1" and spoken.endswith("s"):
        return None  # "one dollars" is not a well-formed amount
    scale_text = f" {scale}" if scale else ""
    if symbol == "yuan":
        return cur_end, f"{number}{scale_text} yuan"
    if scale is None and number.lstrip("-").isdigit():
        cents = _cents(words, cur_end, limit)
        if cents:
            return cents[0], f"{symbol}{number}.{cents[1]:02d}"
    return cur_end, f"{symbol}{number}{scale_text}"


def _cents(words: list[str], j: int, limit: int) -> tuple[int, int] | None:
    """ "and sixty nine cents", "fifty cents" or a bare "sixty three" after the major unit."""
    if j < limit and words[j] == "and":
        j += 1
    card = parse_cardinal(words, j, limit)
    if card is None or not 0 < card.value < 100:
        return None
    if card.end < limit and words[card.end] in _CENTS:
        return card.end + 1, card.value
    if card.end >= limit or words[card.end] not in SCALES:
        if j > 0 and words[j - 1] == "and":
            return None
        return card.end, card.value
    return None
