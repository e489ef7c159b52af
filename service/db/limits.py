"""Column limits the service must validate against before calling the repositories.

The repositories re-check them (raising InvalidValueError) as a last line of defence, so a value
that passes here always fits every supported database. Lengths count characters (code points).
Indexed VARCHARs stay within MySQL/MariaDB's 3072-byte InnoDB key limit in utf8mb4.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "API_KEY_DISPLAY_NAME_MAX",
    "DEFAULT_PAGE_SIZE",
    "ERROR_MAX",
    "HOTWORDS_PER_SET_MAX",
    "HOTWORD_PHRASE_MAX",
    "HOTWORD_SET_DISPLAY_NAME_MAX",
    "HOTWORD_SET_NAME_MAX",
    "LABELS_MAX",
    "LABEL_KEY_MAX",
    "LABEL_VALUE_MAX",
    "LANGUAGE_MAX",
    "MAX_PAGE_SIZE",
    "MODEL_MAX",
    "REQUEST_ID_MAX",
    "STATE_MAX",
    "TENANT_DISPLAY_NAME_MAX",
]

TENANT_DISPLAY_NAME_MAX: Final = 255
API_KEY_DISPLAY_NAME_MAX: Final = 255
HOTWORD_SET_NAME_MAX: Final = 63
HOTWORD_SET_DISPLAY_NAME_MAX: Final = 255
HOTWORD_PHRASE_MAX: Final = 255
HOTWORDS_PER_SET_MAX: Final = 10_000
LANGUAGE_MAX: Final = 32
MODEL_MAX: Final = 255
STATE_MAX: Final = 32
REQUEST_ID_MAX: Final = 128
LABEL_KEY_MAX: Final = 63
LABEL_VALUE_MAX: Final = 255
LABELS_MAX: Final = 64
ERROR_MAX: Final = 65_535
DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 1000
