"""Alembic environment: where the URL comes from and how migrations run.

URL, first found: the ``lingting_url`` attribute set by ``service.db.migrate``, then the
``LINGTING_DATABASE_URL`` environment variable, then ``sqlalchemy.url`` in the ini file, then the
default SQLite file ``data/lingting.db``. Engines come from ``service.db.session.make_engine`` so
migrations see the same connection settings as the service (utf8mb4, SQLite pragmas).
"""

from __future__ import annotations

import logging.config
import os

from alembic import context

from service.db.models import Base
from service.db.session import make_engine

config = context.config
if config.config_file_name is not None and not config.attributes.get("lingting_url"):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("lingting_url") or os.environ.get("LINGTING_DATABASE_URL")
    if not url:
        url = config.get_main_option("sqlalchemy.url") or "sqlite:///data/lingting.db"
    return str(url) if not hasattr(url, "render_as_string") else url.render_as_string(hide_password=False)


def run_offline() -> None:
    """Emit SQL instead of running it (``alembic upgrade head --sql``)."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
