"""Opaque keyset page tokens bound to the query that issued them.

A token is urlsafe base64 of JSON ``{"f": fingerprint, "k": [last row's sort key]}``. The
fingerprint hashes the listing kind, the tenant and the filter, so a token replayed with another
filter, by another tenant or on another listing is refused instead of silently skipping rows.
Tokens are not secret (they carry a time and an id the caller has already seen).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from service.db import limits
from service.db.errors import InvalidPageTokenError

__all__ = ["clamp_page_size", "decode_token", "encode_token", "fingerprint", "key_value"]


def clamp_page_size(page_size: int) -> int:
    """0 or less means the default; larger than the maximum is lowered to it (AIP-158 style)."""
    if page_size <= 0:
        return limits.DEFAULT_PAGE_SIZE
    return min(page_size, limits.MAX_PAGE_SIZE)


def fingerprint(kind: str, tenant_id: int | None, query: Mapping[str, Any]) -> str:
    canonical = json.dumps([kind, tenant_id, query], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def encode_token(fp: str, key: list[Any]) -> str:
    raw = json.dumps(
        {"f": fp, "k": [key_value(v) for v in key]}, separators=(",", ":"), ensure_ascii=False
    ).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, fp: str, kinds: tuple[type, ...]) -> list[Any]:
    """The sort key inside ``token`` (one value per entry of ``kinds``, checked).

    InvalidPageTokenError unless it was issued for ``fp``. Datetimes travel as ISO strings.
    """
    if len(token) > 4096:
        raise InvalidPageTokenError("too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidPageTokenError("not a token issued by this service") from exc
    if not isinstance(body, dict) or not isinstance(body.get("k"), list) or len(body["k"]) != len(kinds):
        raise InvalidPageTokenError("not a token issued by this service")
    if body.get("f") != fp:
        raise InvalidPageTokenError("issued for a different query or filter")
    return [_convert(value, kind) for value, kind in zip(body["k"], kinds, strict=True)]


def _convert(value: Any, kind: type) -> Any:
    if kind is datetime:
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is not None:
                return parsed
    elif isinstance(value, kind) and not isinstance(value, bool):
        return value
    raise InvalidPageTokenError("not a token issued by this service")


def key_value(value: Any) -> Any:
    """A sort-key value as it goes into a token."""
    return value.isoformat() if isinstance(value, datetime) else value
