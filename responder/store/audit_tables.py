"""The audit trail's tables: one row per staff action, and one per purge of old rows.

Append-only, in code and in the database. No function in responder/ updates
or deletes an `audit_events` row except `audit.purge`, and the migration
(0004_audit_dashboard.py) adds triggers on both SQLite and PostgreSQL that
refuse any UPDATE, any TRUNCATE, and any DELETE of a row that is not older
than the cutoff of the latest `audit_purges` row. So even a stray
`DELETE FROM audit_events` fails, and the only way to remove rows leaves a
dated record of the cutoff behind (`audit_purges` itself refuses UPDATE and
DELETE). The database's owner can still drop the triggers: this guards
against mistakes and quiet edits, not against the DBA.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from responder.store.models import Base, UTCDateTime


class AuditEvent(Base):
    """Who did what to which subject, and when; never changed once written."""

    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "clinic_id", "at"), Index(None, "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    # "" for a failed sign-in with a username no clinic has.
    clinic_id: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[str] = mapped_column(String(255), default="")


class AuditPurge(Base):
    """One run of the audit retention: rows older than `cutoff` may be deleted."""

    __tablename__ = "audit_purges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    cutoff: Mapped[datetime] = mapped_column(UTCDateTime())
