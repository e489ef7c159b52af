"""Thousands of first names and surnames for the English training text, from Faker's locale lists (MIT).

Why: the model spells names it has never heard phonetically ("anenthony"); hearing many names of many
origins teaches letter-sound patterns, which is also what a hotword needs to be found. Only Latin-script
locales are used, folded to plain ascii letters; the held-out hotword names are removed by the caller.
Faker is needed only on the recipe machine that writes the text (``requirements.txt`` here).
"""

from __future__ import annotations

import importlib
import unicodedata

# Locales whose names are written in the Latin alphabet (English-speaking ones first for the weighting).
LOCALES = [
    "en_US", "en_GB", "en_IE", "en_NZ", "en_IN", "en_NG", "en_KE", "en_PK", "de_DE", "fr_FR", "es_ES",
    "es_MX", "it_IT", "pt_BR", "nl_NL", "sv_SE", "no_NO", "da_DK", "fi_FI", "pl_PL", "cs_CZ", "hu_HU",
    "ro_RO", "tr_TR", "vi_VN", "id_ID", "yo_NG", "ig_NG", "ha_NG", "sw", "zu_ZA", "tw_GH", "hr_HR",
    "sk_SK", "sl_SI", "lt_LT", "lv_LV", "et_EE", "is_IS", "ga_IE", "fil_PH",
]  # fmt: skip

_FIRST_ATTRS = ("first_names", "first_names_male", "first_names_female", "first_names_nonbinary")
_LAST_ATTRS = ("last_names", "last_names_male", "last_names_female")


def _fold(name: str) -> str:
    """Lower-case ascii letters only ("Müller" -> "muller"); '' when anything else is left."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    plain = plain.replace("'", "").replace("-", " ")
    return plain if plain.replace(" ", "").isalpha() and plain.isascii() else ""


def _words(value: object) -> list[str]:
    if isinstance(value, dict):  # weighted OrderedDicts in some locales
        value = list(value.keys())
    if not isinstance(value, (list, tuple)):
        return []
    out = []
    for item in value:
        if isinstance(item, str):
            folded = _fold(item)
            if folded and 3 <= len(folded) <= 16 and " " not in folded:
                out.append(folded)
    return out


def name_lists(banned: set[str]) -> tuple[list[str], list[str]]:
    """(first names, surnames), de-duplicated in locale order, without ``banned`` words."""
    first: dict[str, None] = {}
    last: dict[str, None] = {}
    for loc in LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{loc}").Provider
        except ModuleNotFoundError:
            continue
        for attr in _FIRST_ATTRS:
            first.update(dict.fromkeys(w for w in _words(getattr(provider, attr, None)) if w not in banned))
        for attr in _LAST_ATTRS:
            last.update(dict.fromkeys(w for w in _words(getattr(provider, attr, None)) if w not in banned))
    return list(first), list(last)
