"""Resource names (AIP-122): ``recognitions/{id}``, ``hotwordSets/{id}``, ``tenants/{t}/apiKeys/{k}``.

Parsing failures are INVALID_ARGUMENT naming the request field; a well-formed name that matches no
row of the caller's tenant is NOT_FOUND later, in the repository.
"""

from __future__ import annotations

import re

from service.errors import ApiError

__all__ = [
    "HOTWORD_SET_ID_RE",
    "api_key_name",
    "hotword_set_name",
    "parse_api_key",
    "parse_hotword_set",
    "parse_hotword_set_ref",
    "parse_recognition",
    "parse_tenant",
    "recognition_name",
    "tenant_name",
]

HOTWORD_SET_ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_MAX_ID = (1 << 63) - 1


def recognition_name(recognition_id: int) -> str:
    return f"recognitions/{recognition_id}"


def hotword_set_name(set_id: str) -> str:
    return f"hotwordSets/{set_id}"


def tenant_name(tenant_id: int) -> str:
    return f"tenants/{tenant_id}"


def api_key_name(tenant_id: int, key_id: int) -> str:
    return f"tenants/{tenant_id}/apiKeys/{key_id}"


def _number(text: str, field: str, expected: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 19 or not 0 < int(text) <= _MAX_ID:
        raise ApiError.invalid(field, f"expected {expected}, got {text[:80]!r}")
    return int(text)


def _split(name: str, collection: str, field: str, expected: str) -> str:
    prefix = collection + "/"
    if not name.startswith(prefix) or "/" in name[len(prefix) :] or len(name) == len(prefix):
        raise ApiError.invalid(field, f"expected {expected}, got {name[:80]!r}")
    return name[len(prefix) :]


def parse_recognition(name: str, field: str = "name") -> int:
    expected = "recognitions/{id}"
    return _number(_split(name, "recognitions", field, expected), field, expected)


def parse_tenant(name: str, field: str = "parent") -> int:
    expected = "tenants/{id}"
    return _number(_split(name, "tenants", field, expected), field, expected)


def parse_api_key(name: str, field: str = "name") -> tuple[int, int]:
    expected = "tenants/{tenant}/apiKeys/{api_key}"
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "tenants" or parts[2] != "apiKeys":
        raise ApiError.invalid(field, f"expected {expected}, got {name[:80]!r}")
    return _number(parts[1], field, expected), _number(parts[3], field, expected)


def parse_hotword_set_ref(ref: str, field: str) -> int | str:
    """A set reference: ``hotwordSets/x`` or bare ``x``; all digits = numeric id, else the set id."""
    text = ref[len("hotwordSets/") :] if ref.startswith("hotwordSets/") else ref
    if text.isascii() and text.isdigit():
        return _number(text, field, "a hotword set id or number")
    if not HOTWORD_SET_ID_RE.match(text):
        raise ApiError.invalid(field, f"{ref[:80]!r} is not a hotword set name")
    return text


def parse_hotword_set(name: str, field: str = "name") -> int | str:
    """``hotwordSets/{id or number}``."""
    _split(name, "hotwordSets", field, "hotwordSets/{hotword_set}")
    return parse_hotword_set_ref(name, field)
