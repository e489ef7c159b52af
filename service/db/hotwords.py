"""Hotword sets: named, per-tenant phrase lists with optional boosts; optimistic locking by etag.

Names are unique among a tenant's live sets (a deleted name can be reused). Updates and deletes
read the row ``FOR UPDATE`` (concurrent writers queue), compare the caller's etag, then
compare-and-set on ``version`` (``UPDATE ... WHERE version = :read_version``); a stale etag raises
StaleEtagError. SQLite has no row locks; its write transactions are serialised by BEGIN IMMEDIATE. Phrases are
the set's value: an update that changes them replaces the hotword rows wholesale.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.db import limits
from service.db.coltypes import utcnow
from service.db.errors import AlreadyExistsError, InvalidValueError, NotFoundError, StaleEtagError
from service.db.ids import IdGenerator
from service.db.models import Hotword, HotwordSet
from service.db.paging import clamp_page_size, decode_token, encode_token, fingerprint
from service.db.records import HotwordRecord, HotwordSetRecord, Page, etag_for
from service.db.scoping import check_text, require_tenant, scoped, scoped_update
from service.db.session import Sessions

__all__ = ["UPDATABLE_FIELDS", "HotwordRepository", "PhraseInput"]

log = logging.getLogger(__name__)

PhraseInput = HotwordRecord | tuple[str, float | None] | str
"""A phrase as callers may pass it: a record, ``(phrase, boost or None)`` or a bare phrase."""

UPDATABLE_FIELDS = frozenset({"display_name", "language", "tenant_default", "phrases"})
"""Fields ``update_hotword_set`` accepts (update_mask paths); ``name`` is immutable."""


def normalize_phrases(phrases: Iterable[PhraseInput]) -> tuple[HotwordRecord, ...]:
    """Checked, de-duplicated (first occurrence wins) phrases in the caller's order."""
    seen: set[str] = set()
    out: list[HotwordRecord] = []
    for index, item in enumerate(phrases):
        if isinstance(item, HotwordRecord):
            phrase, boost = item.phrase, item.boost
        elif isinstance(item, str):
            phrase, boost = item, None
        else:
            phrase, boost = item
        field = f"phrases[{index}]"
        check_text(field, phrase, limits.HOTWORD_PHRASE_MAX, allow_empty=False)
        if boost is not None:
            if isinstance(boost, bool) or not isinstance(boost, int | float) or not math.isfinite(boost):
                raise InvalidValueError(f"{field}.boost", f"must be a finite number, got {boost!r}")
            boost = float(boost)
        if phrase in seen:
            continue
        seen.add(phrase)
        out.append(HotwordRecord(phrase=phrase, boost=boost))
    if len(out) > limits.HOTWORDS_PER_SET_MAX:
        raise InvalidValueError("phrases", f"{len(out)} phrases, the limit is {limits.HOTWORDS_PER_SET_MAX}")
    return tuple(out)


def _check_fields(name: str | None, display_name: str | None, language: str | None) -> None:
    if name is not None:
        check_text("name", name, limits.HOTWORD_SET_NAME_MAX, allow_empty=False)
    if display_name is not None:
        check_text("display_name", display_name, limits.HOTWORD_SET_DISPLAY_NAME_MAX)
    if language is not None:
        check_text("language", language, limits.LANGUAGE_MAX)


class HotwordRepository:
    def __init__(self, sessions: Sessions, ids: IdGenerator) -> None:
        self._sessions = sessions
        self._ids = ids

    # -- reads ---------------------------------------------------------------------------------

    def get_hotword_set(self, tenant_id: int, ref: int | str) -> HotwordSetRecord:
        """A live set by id (int) or name (str); NotFoundError otherwise."""
        return self.resolve_hotword_sets(tenant_id, [ref])[0]

    def resolve_hotword_sets(self, tenant_id: int, refs: Sequence[int | str]) -> tuple[HotwordSetRecord, ...]:
        """Sets by id (int) or name (str), in the order given, duplicates dropped.

        NotFoundError lists every reference that matches no live set of this tenant.
        """
        ids = [r for r in refs if isinstance(r, int) and not isinstance(r, bool)]
        names = [r for r in refs if isinstance(r, str)]
        if len(ids) + len(names) != len(refs):
            raise InvalidValueError("hotword_sets", "references must be ids (int) or names (str)")
        with self._sessions.read() as session:
            rows: list[HotwordSet] = []
            if ids:
                rows += session.scalars(scoped(HotwordSet, tenant_id).where(HotwordSet.id.in_(set(ids))))
            if names:
                rows += session.scalars(scoped(HotwordSet, tenant_id).where(HotwordSet.name.in_(set(names))))
            by_id = {r.id: r for r in rows}
            by_name = {r.name: r for r in rows}
            missing = [r for r in refs if (by_id.get(r) if isinstance(r, int) else by_name.get(r)) is None]
            if missing:
                raise NotFoundError("hotword_set", missing)
            ordered: list[HotwordSet] = []
            for ref in refs:
                row = by_id[ref] if isinstance(ref, int) else by_name[ref]
                if row not in ordered:
                    ordered.append(row)
            return self._records(session, ordered)

    def default_hotword_sets(self, tenant_id: int) -> tuple[HotwordSetRecord, ...]:
        """The tenant's sets flagged ``tenant_default`` (applied to every request), by name."""
        with self._sessions.read() as session:
            rows = list(
                session.scalars(
                    scoped(HotwordSet, tenant_id)
                    .where(HotwordSet.tenant_default.is_(True))
                    .order_by(HotwordSet.name)
                )
            )
            return self._records(session, rows)

    def list_hotword_sets(
        self,
        tenant_id: int,
        page_size: int = 0,
        page_token: str = "",
        *,
        tenant_default: bool | None = None,
    ) -> Page[HotwordSetRecord]:
        """Live sets ordered by name; ``tenant_default`` filters on the flag when not None."""
        size = clamp_page_size(page_size)
        fp = fingerprint("hotword_set", tenant_id, {"tenant_default": tenant_default})
        stmt = scoped(HotwordSet, tenant_id)
        if tenant_default is not None:
            stmt = stmt.where(HotwordSet.tenant_default.is_(tenant_default))
        if page_token:
            (after_name,) = decode_token(page_token, fp, (str,))
            stmt = stmt.where(HotwordSet.name > after_name)
        with self._sessions.read() as session:
            rows = list(session.scalars(stmt.order_by(HotwordSet.name).limit(size + 1)))
            more = len(rows) > size
            rows = rows[:size]
            items = self._records(session, rows)
        token = encode_token(fp, [rows[-1].name]) if more else ""
        return Page(items=items, next_page_token=token)

    # -- writes --------------------------------------------------------------------------------

    def create_hotword_set(
        self,
        tenant_id: int,
        name: str,
        *,
        display_name: str = "",
        language: str = "",
        tenant_default: bool = False,
        phrases: Iterable[PhraseInput] = (),
    ) -> HotwordSetRecord:
        """A new set; AlreadyExistsError if a live set of the tenant has this name."""
        _check_fields(name, display_name, language)
        clean = normalize_phrases(phrases)
        now = utcnow()
        row = HotwordSet(
            id=self._ids.next_id(),
            tenant_id=tenant_id,
            name=name,
            display_name=display_name,
            language=language,
            tenant_default=bool(tenant_default),
            deleted_token=0,
            create_time=now,
            update_time=now,
            deleted=0,
            version=1,
        )
        try:
            with self._sessions.write() as session:
                require_tenant(session, tenant_id)
                if session.scalar(scoped(HotwordSet, tenant_id).where(HotwordSet.name == name)) is not None:
                    raise AlreadyExistsError("hotword_set", name)
                session.add(row)
                session.flush()
                self._insert_phrases(session, row, clean, now)
                record = self._record(row, clean)
        except IntegrityError as exc:  # lost a race with a concurrent create of the same name
            raise AlreadyExistsError("hotword_set", name) from exc
        log.info("hotword set %d (%s) created for tenant %d", record.id, name, tenant_id)
        return record

    def update_hotword_set(
        self,
        tenant_id: int,
        set_id: int,
        changes: Mapping[str, Any],
        expected_etag: str | None = None,
    ) -> HotwordSetRecord:
        """Apply ``changes`` (keys from UPDATABLE_FIELDS) atomically; bumps the version/etag.

        With ``expected_etag`` the update happens only if the set is still at that etag
        (StaleEtagError otherwise). Without it, the update applies to the current version.
        """
        unknown = sorted(set(changes) - UPDATABLE_FIELDS)
        if unknown:
            raise InvalidValueError(unknown[0], "is not an updatable field of a hotword set")
        values: dict[str, Any] = {k: v for k, v in changes.items() if k != "phrases"}
        _check_fields(None, values.get("display_name"), values.get("language"))
        if "tenant_default" in values and not isinstance(values["tenant_default"], bool):
            raise InvalidValueError("tenant_default", "must be a bool")
        new_phrases = normalize_phrases(changes["phrases"]) if "phrases" in changes else None
        now = utcnow()
        with self._sessions.write() as session:
            row = self._load_for_change(session, tenant_id, set_id, expected_etag)
            self._compare_and_set(session, row, dict(values, update_time=now))
            if new_phrases is not None:
                session.execute(delete(Hotword).where(Hotword.hotword_set_id == set_id))
                self._insert_phrases(session, row, new_phrases, now)
            session.expire(row)
            return self._records(session, [row])[0]

    def delete_hotword_set(self, tenant_id: int, set_id: int, expected_etag: str | None = None) -> None:
        """Logically delete a set (its name becomes free); etag-checked like an update."""
        now = utcnow()
        with self._sessions.write() as session:
            row = self._load_for_change(session, tenant_id, set_id, expected_etag)
            self._compare_and_set(session, row, {"deleted": 1, "deleted_token": set_id, "update_time": now})
            session.execute(
                scoped_update(Hotword, tenant_id)
                .where(Hotword.hotword_set_id == set_id)
                .values(deleted=1, update_time=now)
            )
        log.info("hotword set %d of tenant %d deleted", set_id, tenant_id)

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _load_for_change(
        session: Session, tenant_id: int, set_id: int, expected_etag: str | None
    ) -> HotwordSet:
        """The set, row-locked until commit (so concurrent writers queue), checked against the etag."""
        row = session.scalar(scoped(HotwordSet, tenant_id).where(HotwordSet.id == set_id).with_for_update())
        if row is None:
            raise NotFoundError("hotword_set", [set_id])
        current = etag_for(row.id, row.version)
        if expected_etag is not None and expected_etag != current:
            raise StaleEtagError("hotword_set", set_id, expected_etag, current)
        return row

    @staticmethod
    def _compare_and_set(session: Session, row: HotwordSet, values: dict[str, Any]) -> None:
        """``UPDATE ... WHERE version = <read version>``, bumping the version; StaleEtagError if it lost."""
        result = session.execute(
            scoped_update(HotwordSet, row.tenant_id)
            .where(HotwordSet.id == row.id, HotwordSet.version == row.version)
            .values(**values, version=row.version + 1)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise StaleEtagError(
                "hotword_set", row.id, etag_for(row.id, row.version), "(changed concurrently)"
            )

    def _insert_phrases(
        self, session: Session, parent: HotwordSet, phrases: Sequence[HotwordRecord], now: Any
    ) -> None:
        if not phrases:
            return
        session.execute(
            insert(Hotword),
            [
                {
                    "id": self._ids.next_id(),
                    "tenant_id": parent.tenant_id,
                    "hotword_set_id": parent.id,
                    "ordinal": i,
                    "phrase": p.phrase,
                    "boost": p.boost,
                    "create_time": now,
                    "update_time": now,
                    "deleted": 0,
                    "version": 1,
                }
                for i, p in enumerate(phrases)
            ],
        )

    @staticmethod
    def _record(row: HotwordSet, phrases: tuple[HotwordRecord, ...]) -> HotwordSetRecord:
        return HotwordSetRecord(
            id=row.id,
            tenant_id=row.tenant_id,
            name=row.name,
            display_name=row.display_name,
            language=row.language,
            tenant_default=bool(row.tenant_default),
            phrases=phrases,
            version=row.version,
            create_time=row.create_time,
            update_time=row.update_time,
        )

    def _records(self, session: Session, rows: Sequence[HotwordSet]) -> tuple[HotwordSetRecord, ...]:
        """Records for ``rows`` with their phrases, loaded in one query."""
        if not rows:
            return ()
        phrases: dict[int, list[HotwordRecord]] = {r.id: [] for r in rows}
        tenant_id = rows[0].tenant_id
        hotwords = session.execute(
            select(Hotword.hotword_set_id, Hotword.phrase, Hotword.boost)
            .where(
                Hotword.tenant_id == tenant_id,
                Hotword.deleted == 0,
                Hotword.hotword_set_id.in_(list(phrases)),
            )
            .order_by(Hotword.hotword_set_id, Hotword.ordinal)
        )
        for set_id, phrase, boost in hotwords:
            phrases[set_id].append(HotwordRecord(phrase=phrase, boost=boost))
        return tuple(self._record(r, tuple(phrases[r.id])) for r in rows)
