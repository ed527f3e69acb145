"""The audit trail's API: record a staff action in one line, read a clinic's rows, purge.

    from responder.store import audit
    audit.record(db, clinic_id, actor, audit.TAKE_OVER, "conversation:42")
    audit.events(engine, clinic_id, since, until, action=None, limit=200) -> list[AuditRow]
    audit.stream(engine, clinic_id, since, until, action) -> Iterator[AuditRow]  # oldest 1st
    audit.purge(engine, older_than) -> int                                # calfline purge

`db` is an Engine (the row gets its own transaction) or a Connection or
Session (the row commits or rolls back with the caller's own change, so an
action and its audit row are never apart). There is deliberately no update
or delete here beyond `purge`; the tables and their triggers are in
audit_tables.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Engine, delete, insert, select
from sqlalchemy.orm import Session

from responder.store.audit_tables import AuditEvent, AuditPurge
from responder.store.conversation_store import short_text, utcnow

SIGN_IN = "sign_in"
SIGN_IN_FAILED = "sign_in_failed"
SIGN_OUT = "sign_out"
VIEW_CONVERSATION = "conversation.view"
TAKE_OVER = "conversation.take_over"
REPLY = "conversation.reply"
HAND_BACK = "conversation.hand_back"
ACKNOWLEDGE = "inbox.acknowledge"
CLOSE = "inbox.close"
RESEND = "inbox.resend"
VIEW_AUDIT = "audit.view"
EXPORT_AUDIT = "audit.export"
EXPORT_DASHBOARD = "dashboard.export"
# A typo in an action name would hide rows from whoever filters on the right one.
ACTIONS = frozenset({
    SIGN_IN, SIGN_IN_FAILED, SIGN_OUT, VIEW_CONVERSATION, TAKE_OVER, REPLY, HAND_BACK,
    ACKNOWLEDGE, CLOSE, RESEND, VIEW_AUDIT, EXPORT_AUDIT, EXPORT_DASHBOARD,
})
SYSTEM_ACTOR = "calfline"  # actions the service takes by itself, e.g. a re-sent alert
UNKNOWN_ACTOR = "(unknown username)"  # a failed sign-in as nobody the clinics file knows


@dataclass(frozen=True)
class AuditRow:
    """One audit event as the admin pages and the CSV show it."""

    id: int
    at: datetime
    clinic_id: str
    actor: str
    action: str
    subject: str
    detail: str


def record(db: Engine | Connection | Session, clinic_id: str, actor: str, action: str,
           subject: str = "", detail: str = "", at: datetime | None = None) -> None:
    """Append one audit event; raise ValueError for an action not in ACTIONS."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    statement = insert(AuditEvent).values(
        at=at or utcnow(), clinic_id=short_text(clinic_id, 40), actor=short_text(actor, 64),
        action=action, subject=short_text(subject, 128), detail=short_text(detail, 255))
    if isinstance(db, Engine):
        with db.begin() as connection:
            connection.execute(statement)
    else:
        db.execute(statement)


def _query(clinic_id: str, since: datetime | None, until: datetime | None,
           action: str | None) -> Any:
    stmt = select(AuditEvent).where(AuditEvent.clinic_id == clinic_id)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.at < until)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    return stmt


def _row(event: AuditEvent) -> AuditRow:
    return AuditRow(event.id, event.at, event.clinic_id, event.actor, event.action,
                    event.subject, event.detail)


def events(engine: Engine, clinic_id: str, since: datetime | None = None,
           until: datetime | None = None, action: str | None = None,
           limit: int = 200) -> list[AuditRow]:
    """Return a clinic's newest events first, optionally of one action only."""
    stmt = (_query(clinic_id, since, until, action)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit))
    with Session(engine) as session:
        return [_row(event) for event in session.scalars(stmt)]


def stream(engine: Engine, clinic_id: str, since: datetime | None = None,
           until: datetime | None = None, action: str | None = None) -> Iterator[AuditRow]:
    """Yield a clinic's events oldest first, a batch at a time (for the CSV export)."""
    stmt = _query(clinic_id, since, until, action).order_by(AuditEvent.at, AuditEvent.id)
    with Session(engine) as session:
        for event in session.scalars(stmt.execution_options(yield_per=500)):
            yield _row(event)


def purge(engine: Engine, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete events older than the cutoff, after recording the cutoff (the triggers' key)."""
    now = now or utcnow()
    cutoff = now - older_than
    with engine.begin() as connection:
        connection.execute(insert(AuditPurge).values(at=now, cutoff=cutoff))
        result = connection.execute(delete(AuditEvent).where(AuditEvent.at < cutoff))
        return int(cast(CursorResult[Any], result).rowcount)
