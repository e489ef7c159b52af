"""The persistence layer's face: one object per process holding the engine and the repositories.

    db = Database(url)                       # schema must already be migrated (``migrate.upgrade``)
    tenant = db.tenants.create_tenant("Acme")
    key, secret = db.api_keys.create_api_key(tenant.id, "backend")
    db.api_keys.authenticate(secret)         # -> TenantRecord | None
    db.hotwords.create_hotword_set(tenant.id, "products", phrases=[("灵听", 2.0)])
    db.recognitions.create_recognition(tenant.id, NewRecognition(state="SUCCEEDED", model="m"))
    db.close()

Every repository method is synchronous, runs one transaction and is safe to call from many
threads at once (the servicers use ``asyncio.to_thread``).
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import URL

from service.db.api_keys import ApiKeyRepository
from service.db.hotwords import HotwordRepository
from service.db.ids import IdGenerator
from service.db.recognitions import RecognitionRepository
from service.db.session import Sessions, make_engine
from service.db.tenants import TenantRepository

__all__ = ["Database"]

log = logging.getLogger(__name__)


class Database:
    def __init__(
        self,
        url: str | URL,
        *,
        api_key_pepper: bytes | str | None = None,
        worker_id: int | None = None,
        pool_size: int = 10,
        echo: bool = False,
    ) -> None:
        """``worker_id`` (0..1023) seeds the id generator; default: ``LINGTING_WORKER_ID`` or random."""
        self.engine = make_engine(url, echo=echo, pool_size=pool_size)
        self.sessions = Sessions(self.engine)
        self.ids = ids = IdGenerator(worker_id)
        pepper = api_key_pepper.encode() if isinstance(api_key_pepper, str) else api_key_pepper
        self.tenants = TenantRepository(self.sessions, ids)
        self.api_keys = ApiKeyRepository(self.sessions, ids, pepper=pepper)
        self.hotwords = HotwordRepository(self.sessions, ids)
        self.recognitions = RecognitionRepository(self.sessions, ids)
        log.info("database %s opened", self.engine.url.render_as_string(hide_password=True))

    @property
    def dialect_name(self) -> str:
        return self.sessions.dialect_name

    def close(self) -> None:
        """Close pooled connections (idempotent)."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
