"""The effective hotwords of one request: tenant defaults, then named sets, then inline phrases."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

from asr_engine.types import Hotword
from service.db import Database, HotwordSetRecord, limits
from service.errors import ApiError
from service.names import hotword_set_name

__all__ = ["HotwordRequest", "MergedHotwords", "check_inline", "merge_hotwords"]


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


async def merge_hotwords(
    db: Database, tenant_id: int, request: HotwordRequest, max_count: int
) -> MergedHotwords:
    """Merge in order defaults < named sets < inline; a repeated phrase keeps its first place, last boost."""
    check_inline(request.inline, max_count)
    sets: list[HotwordSetRecord] = []
    if request.use_tenant_defaults:
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
