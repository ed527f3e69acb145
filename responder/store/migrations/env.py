"""Alembic environment: migrate the connection CalfLine hands over, or DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

# Imported to register their tables on Base.metadata.
from responder.store import escalation_outbox, inbox_items, message_statuses  # noqa: F401
from responder.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    """Upgrade on the connection given by responder.store, or on DATABASE_URL (alembic CLI)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = os.environ.get("DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set DATABASE_URL to the database to migrate")
    engine = create_engine(url)
    with engine.begin() as conn:
        # render_as_batch: SQLite cannot ALTER most things; Alembic copies the table instead.
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run against a database")
run_migrations()
