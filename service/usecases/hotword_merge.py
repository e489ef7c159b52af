"""The effective hotwords of one request: tenant defaults, then named sets, then inline phrases."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from asr_engine.types import Hotword
from service.db import Database, HotwordSetRecord, limits
from service.errors import ApiError
from service.names import hotword_set_name

__all__ = ["DefaultSetsCache", "HotwordRequest", "MergedHotwords", "check_inline", "merge_hotwords"]


@dataclass(frozen=True, kw_only=True)
class HotwordRequest:
    inline: tuple[Hotword, ...] = ()
    sets: tuple[int | str, ...] = ()  # parsed references: numeric id or set id
    use_tenant_defaults: bool = True


@dataclass(frozen=True, kw_only=True)
class MergedHotwords:
    hotwords: tuple[Hotword, ...]
    set_names: tuple[str, ...]  # resource names of the stored sets that contributed


def too_many(count: int, limit: int) -> ApiError:
    return ApiError.invalid(
        "config.hotword_config.hotwords",
        f"{count} hotwords after merging sets, the limit is {limit}",
        reason="TOO_MANY_HOTWORDS",
    )


def check_inline(hotwords: Sequence[Hotword], max_count: int) -> None:
    """Cheap checks of the request's own phrases, before any database work."""
    if len(hotwords) > max_count:
        raise too_many(len(hotwords), max_count)
    for index, hotword in enumerate(hotwords):
        field = f"config.hotword_config.hotwords[{index}]"
        if not hotword.phrase.strip():
            raise ApiError.invalid(field + ".phrase", "must not be empty")
        if len(hotword.phrase) > limits.HOTWORD_PHRASE_MAX:
            raise ApiError.invalid(
                field + ".phrase", f"is longer than {limits.HOTWORD_PHRASE_MAX} characters"
            )
        if "\x00" in hotword.phrase:
            raise ApiError.invalid(field + ".phrase", "must not contain NUL characters")
        if hotword.boost is not None and not math.isfinite(hotword.boost):
            raise ApiError.invalid(field + ".boost", "must be a finite number")


class DefaultSetsCache:
    """Each tenant's default hotword sets, kept for ``ttl_s`` seconds.

    Every request applies its tenant's defaults, and reading them is a database round trip that costs
    more server CPU than the rest of a short request's bookkeeping. Changes made through this server
    invalidate the tenant's entry at once; changes made elsewhere (another replica, the CLI) show within
    ``ttl_s``.
    """

    def __init__(self, ttl_s: float = 5.0, max_entries: int = 10_000) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: dict[int, tuple[tuple[HotwordSetRecord, ...], float]] = {}
        self._generation: dict[int, int] = {}

    async def get(self, db: Database, tenant_id: int) -> tuple[HotwordSetRecord, ...]:
        now = time.monotonic()
        hit = self._entries.get(tenant_id)
        if hit is not None and hit[1] > now:
            return hit[0]
        generation = self._generation.get(tenant_id, 0)
        sets = tuple(await asyncio.to_thread(db.hotwords.default_hotword_sets, tenant_id))
        if self._generation.get(tenant_id, 0) == generation:  # no change raced with the read
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[tenant_id] = (sets, now + self._ttl_s)
        return sets

    def invalidate(self, tenant_id: int) -> None:
        """Forget a tenant's defaults (after one of its sets was created, changed or deleted)."""
        self._entries.pop(tenant_id, None)
        self._generation[tenant_id] = self._generation.get(tenant_id, 0) + 1


async def merge_hotwords(
    db: Database,
    tenant_id: int,
    request: HotwordRequest,
    max_count: int,
    defaults: DefaultSetsCache | None = None,
) -> MergedHotwords:
    """Merge in order defaults < named sets < inline; a repeated phrase keeps its first place, last boost."""
    check_inline(request.inline, max_count)
    sets: list[HotwordSetRecord] = []
    if request.use_tenant_defaults:
        if defaults is not None:
            sets += await defaults.get(db, tenant_id)
        else:
            sets += await asyncio.to_thread(db.hotwords.default_hotword_sets, tenant_id)
    if request.sets:
        sets += await asyncio.to_thread(db.hotwords.resolve_hotword_sets, tenant_id, list(request.sets))
    merged: dict[str, float | None] = {}
    names: list[str] = []
    seen_sets: set[int] = set()
    for record in sets:
        if record.id in seen_sets:
            continue
        seen_sets.add(record.id)
        names.append(hotword_set_name(record.name))
        for phrase in record.phrases:
            merged[phrase.phrase] = phrase.boost
    for hotword in request.inline:
        merged[hotword.phrase] = hotword.boost
    if len(merged) > max_count:
        raise too_many(len(merged), max_count)
    return MergedHotwords(
        hotwords=tuple(Hotword(phrase=p, boost=b) for p, b in merged.items()), set_names=tuple(names)
    )
