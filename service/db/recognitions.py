"""Recognition history: one row per persisted recognition, listed newest first with keyset paging.

Idempotency: a ``request_id`` is unique among a tenant's live recognitions. Creating a second one
raises DuplicateRequestError carrying the existing record, so the servicer can replay it (the
cheap path is to call ``find_by_request_id`` before transcribing; the unique index settles races).
After a logical delete the request_id may be used again.
Labels are stored twice: as JSON on the row (returned as-is) and as ``recognition_label`` rows,
which the ``labels`` filter matches through an index on every database.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from service.db import limits
from service.db.coltypes import utcnow
from service.db.errors import DuplicateRequestError, InvalidValueError, NotFoundError
from service.db.ids import IdGenerator
from service.db.models import Recognition, RecognitionLabel, Tenant
from service.db.paging import clamp_page_size, decode_token, encode_token, fingerprint
from service.db.records import Page, RecognitionRecord
from service.db.scoping import check_text, scoped, scoped_update
from service.db.session import Sessions

__all__ = ["NewRecognition", "RecognitionFilter", "RecognitionRepository", "check_labels"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewRecognition:
    """What the servicer persists after a recognition (JSON fields must be JSON-serialisable)."""

    state: str
    model: str
    language: str = ""
    request_id: str | None = None
    audio_duration_ms: int = 0
    processing_ms: int = 0
    transcript: str = ""
    transcript_raw: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    segments: Sequence[Mapping[str, Any]] = ()
    applied_hotwords: Sequence[Any] = ()
    warnings: Sequence[Any] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecognitionFilter:
    """History filter; every given condition must hold. Times: ``from`` inclusive, ``to`` exclusive."""

    create_time_from: datetime | None = None
    create_time_to: datetime | None = None
    states: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    text_contains: str = ""

    def canonical(self) -> dict[str, Any]:
        return {
            "from": self.create_time_from.isoformat() if self.create_time_from else None,
            "to": self.create_time_to.isoformat() if self.create_time_to else None,
            "states": sorted(set(self.states)),
            "labels": sorted(self.labels.items()),
            "text": self.text_contains,
        }


def check_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """Labels within the storage limits (count, key and value length), or InvalidValueError."""
    if len(labels) > limits.LABELS_MAX:
        raise InvalidValueError("labels", f"{len(labels)} labels, the limit is {limits.LABELS_MAX}")
    out: dict[str, str] = {}
    for key, value in labels.items():
        check_text("labels key", key, limits.LABEL_KEY_MAX, allow_empty=False)
        check_text(f"labels[{key!r}]", value, limits.LABEL_VALUE_MAX)
        out[key] = value
    return out


def _check_json(field_name: str, value: Any) -> None:
    """PostgreSQL rejects NUL in JSON text and NaN is not JSON: refuse both on every database."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise InvalidValueError(field_name, "must not contain NUL characters")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidValueError(field_name, "must not contain NaN or infinity")
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def _record(row: Recognition) -> RecognitionRecord:
    return RecognitionRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        request_id=row.request_id,
        state=row.state,
        model=row.model,
        language=row.language,
        audio_duration_ms=row.audio_duration_ms,
        processing_ms=row.processing_ms,
        transcript=row.transcript,
        transcript_raw=row.transcript_raw,
        config=row.config,
        labels=row.labels,
        segments=row.segments,
        applied_hotwords=row.applied_hotwords,
        warnings=row.warnings,
        error=row.error_message,
        create_time=row.create_time,
        update_time=row.update_time,
    )


def escape_like(text: str) -> str:
    """``text`` with LIKE wildcards made literal (escape character ``/``)."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


class RecognitionRepository:
    def __init__(self, sessions: Sessions, ids: IdGenerator) -> None:
        self._sessions = sessions
        self._ids = ids

    def create_recognition(self, tenant_id: int, new: NewRecognition) -> RecognitionRecord:
        """Persist one recognition with its labels in one transaction.

        DuplicateRequestError (carrying the existing record) if ``request_id`` is already used;
        NotFoundError for an unknown tenant. The tenant is not re-checked for liveness here
        (authentication already did), which saves a query per request.
        """
        labels = self._validate(new)
        config, segments = dict(new.config), [dict(s) for s in new.segments]
        applied, warnings = list(new.applied_hotwords), list(new.warnings)
        now = utcnow()
        row = Recognition(
            id=self._ids.next_id(),
            tenant_id=tenant_id,
            request_id=new.request_id or None,
            state=new.state,
            model=new.model,
            language=new.language,
            audio_duration_ms=int(new.audio_duration_ms),
            processing_ms=int(new.processing_ms),
            transcript=new.transcript,
            transcript_raw=new.transcript_raw,
            config=config,
            labels=labels,
            segments=segments,
            applied_hotwords=applied,
            warnings=warnings,
            error_message=new.error,
            deleted_token=0,
            create_time=now,
            update_time=now,
            deleted=0,
            version=1,
        )
        try:
            with self._sessions.write() as session:
                if row.request_id is not None:
                    existing = session.scalar(
                        scoped(Recognition, tenant_id).where(Recognition.request_id == row.request_id)
                    )
                    if existing is not None:
                        raise DuplicateRequestError(row.request_id, _record(existing))
                session.add(row)
                session.flush()
                if labels:
                    session.execute(
                        insert(RecognitionLabel),
                        [
                            {
                                "id": self._ids.next_id(),
                                "tenant_id": tenant_id,
                                "recognition_id": row.id,
                                "label_key": key,
                                "label_value": value,
                                "create_time": now,
                                "update_time": now,
                                "deleted": 0,
                                "version": 1,
                            }
                            for key, value in labels.items()
                        ],
                    )
                return _record(row)
        except IntegrityError as exc:
            if row.request_id is not None:  # lost the race to a concurrent request with the same id
                winner = self.find_by_request_id(tenant_id, row.request_id)
                if winner is not None:
                    raise DuplicateRequestError(row.request_id, winner) from None
            with self._sessions.read() as session:
                if session.get(Tenant, tenant_id) is None:  # the foreign key refused an unknown tenant
                    raise NotFoundError("tenant", [tenant_id]) from exc
            raise

    def get_recognition(self, tenant_id: int, recognition_id: int) -> RecognitionRecord:
        with self._sessions.read() as session:
            row = session.scalar(scoped(Recognition, tenant_id).where(Recognition.id == recognition_id))
            if row is None:
                raise NotFoundError("recognition", [recognition_id])
            return _record(row)

    def find_by_request_id(self, tenant_id: int, request_id: str) -> RecognitionRecord | None:
        """The live recognition created with ``request_id`` in this tenant, if any."""
        with self._sessions.read() as session:
            row = session.scalar(scoped(Recognition, tenant_id).where(Recognition.request_id == request_id))
            return None if row is None else _record(row)

    def list_recognitions(
        self,
        tenant_id: int,
        query: RecognitionFilter | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[RecognitionRecord]:
        """The tenant's live recognitions matching ``query``, newest first (create_time, then id)."""
        query = query or RecognitionFilter()
        for name in ("create_time_from", "create_time_to"):
            moment = getattr(query, name)
            if moment is not None and moment.utcoffset() is None:
                raise InvalidValueError(name, "must be timezone-aware")
        size = clamp_page_size(page_size)
        fp = fingerprint("recognition", tenant_id, query.canonical())
        stmt = scoped(Recognition, tenant_id).where(*self._conditions(tenant_id, query))
        if page_token:
            after_time, after_id = decode_token(page_token, fp, (datetime, int))
            stmt = stmt.where(
                or_(
                    Recognition.create_time < after_time,
                    and_(Recognition.create_time == after_time, Recognition.id < after_id),
                )
            )
        stmt = stmt.order_by(Recognition.create_time.desc(), Recognition.id.desc()).limit(size + 1)
        with self._sessions.read() as session:
            rows = list(session.scalars(stmt))
            more = len(rows) > size
            items = tuple(_record(r) for r in rows[:size])
        token = encode_token(fp, [items[-1].create_time, items[-1].id]) if more else ""
        return Page(items=items, next_page_token=token)

    def delete_recognition(self, tenant_id: int, recognition_id: int) -> None:
        """Logically delete a recognition and its label rows; NotFoundError if not live."""
        now = utcnow()
        with self._sessions.write() as session:
            result = session.execute(
                scoped_update(Recognition, tenant_id)
                .where(Recognition.id == recognition_id)
                .values(
                    deleted=1, deleted_token=recognition_id, version=Recognition.version + 1, update_time=now
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise NotFoundError("recognition", [recognition_id])
            session.execute(
                scoped_update(RecognitionLabel, tenant_id)
                .where(RecognitionLabel.recognition_id == recognition_id)
                .values(deleted=1, update_time=now)
            )
        log.info("recognition %d of tenant %d deleted", recognition_id, tenant_id)

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _validate(new: NewRecognition) -> dict[str, str]:
        check_text("state", new.state, limits.STATE_MAX, allow_empty=False)
        check_text("model", new.model, limits.MODEL_MAX)
        check_text("language", new.language, limits.LANGUAGE_MAX)
        if new.request_id is not None:
            check_text("request_id", new.request_id, limits.REQUEST_ID_MAX)
        check_text("transcript", new.transcript, 1 << 28)
        check_text("transcript_raw", new.transcript_raw, 1 << 28)
        if new.error is not None:
            check_text("error", new.error, limits.ERROR_MAX)
        for name in ("config", "segments", "applied_hotwords", "warnings"):
            _check_json(name, getattr(new, name))
        return check_labels(new.labels)

    def _conditions(self, tenant_id: int, query: RecognitionFilter) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if query.create_time_from is not None:
            conditions.append(Recognition.create_time >= query.create_time_from)
        if query.create_time_to is not None:
            conditions.append(Recognition.create_time < query.create_time_to)
        if query.states:
            conditions.append(Recognition.state.in_(sorted(set(query.states))))
        for key, value in sorted(query.labels.items()):
            conditions.append(
                exists(
                    select(RecognitionLabel.id).where(
                        RecognitionLabel.tenant_id == tenant_id,
                        RecognitionLabel.label_key == key,
                        RecognitionLabel.label_value == value,
                        RecognitionLabel.recognition_id == Recognition.id,
                        RecognitionLabel.deleted == 0,
                    )
                )
            )
        if query.text_contains:
            conditions.append(self._contains_ci(query.text_contains))
        return conditions

    def _contains_ci(self, text: str) -> ColumnElement[bool]:
        """Case-insensitive substring match on the transcript; wildcards in ``text`` are literal."""
        pattern = f"%{escape_like(text.lower())}%"
        column = Recognition.transcript
        dialect = self._sessions.dialect_name
        if dialect == "postgresql":
            return column.ilike(pattern, escape="/")
        if dialect == "sqlite":
            return func.lt_lower(column).like(pattern, escape="/")
        return func.lower(column).like(pattern, escape="/")
