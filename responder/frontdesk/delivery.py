"""Delivery you can see: Twilio's status reports for alert SMS and staff replies.

record_status() keeps one row per (MessageSid, status) in message_statuses,
however often Twilio reports it. When an alert SMS fails (Twilio reports
failed/undelivered, or the worker gives up on it), alert_failed() falls back to
the clinic's webhook, or, without one, marks the inbox item as not alerted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from flask import Flask
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from responder.store.escalation_outbox import Escalation
from responder.store.inbox_items import InboxItem
from responder.store.message_statuses import FAILED_STATUSES, KNOWN_STATUSES, MessageStatus

log = logging.getLogger("calfline.delivery")
# An inbox item's re-sent alerts carry this event key prefix and the item's id.
RESEND_PREFIX = "resend-"
# When statuses arrive out of order, the furthest one is what the console shows.
_RANK = {status: rank for rank, status in enumerate(KNOWN_STATUSES)}


def utcnow() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


def record_status(engine: Engine, sid: str, status: str, error_code: str | None = None) -> bool:
    """Keep one status report; False when this (sid, status) was already recorded."""
    row = MessageStatus(message_sid=sid[:64], status=status[:16],
                        error_code=(error_code or None) and error_code[:16], created_at=utcnow())
    try:
        with Session(engine) as session, session.begin():
            session.add(row)
    except IntegrityError:
        return False  # Twilio sent the same status again
    return True


def latest_statuses(engine: Engine, sids: Iterable[str]) -> dict[str, str]:
    """The furthest status reported for each MessageSid (failed beats delivered)."""
    wanted = [s for s in sids if s]
    if not wanted:
        return {}
    found: dict[str, str] = {}
    with Session(engine) as session:
        rows = session.execute(select(MessageStatus.message_sid, MessageStatus.status)
                               .where(MessageStatus.message_sid.in_(wanted)))
        for sid, status in rows:
            if _RANK.get(status, -1) >= _RANK.get(found.get(sid, ""), -1):
                found[sid] = status
    return found


def items_of(session: Session, row: Escalation) -> list[InboxItem]:
    """The inbox items an alert is about (one, or a message's item of each kind)."""
    if row.event_key.startswith(RESEND_PREFIX):
        item_id = row.event_key[len(RESEND_PREFIX):]
        where = InboxItem.id == int(item_id) if item_id.isdigit() else InboxItem.id.is_(None)
    else:
        where = InboxItem.event_key == row.event_key
    mine = InboxItem.clinic_id == row.clinic_id
    return list(session.scalars(select(InboxItem).where(where, mine)))


def alert_failed(app: Flask, row: Escalation) -> str:
    """An alert did not reach the clinic: try its webhook, else mark the inbox item failed.

    Returns "webhook" when a webhook notice was queued, "marked" otherwise.
    """
    clinic = app.extensions["calfline_clinics"].clinics.get(row.clinic_id)
    engine: Engine = app.extensions["calfline_store"].engine
    now = utcnow()
    with Session(engine) as session, session.begin():
        items = items_of(session, row)
        number = row.patient_number or next((i.patient_number for i in items
                                             if i.patient_number), None)
        if row.target == "sms" and clinic is not None and clinic.escalation_webhook_url:
            try:
                with session.begin_nested():
                    session.add(Escalation(
                        event_key=row.event_key, target="webhook", clinic_id=row.clinic_id,
                        channel=row.channel, intent=row.intent, our_number=row.our_number,
                        patient_number=number, patient_last4=row.patient_last4,
                        conversation_id=row.conversation_id, body=row.body, created_at=now,
                        status="pending", attempts=0, next_attempt_at=now))
                log.warning("alert SMS %s to %s failed; sent to the webhook instead",
                            row.id, row.clinic_id)
                queued = True
            except IntegrityError:
                queued = False  # the webhook already has (or had) this alert
            if queued:
                wakeup = app.extensions.get("calfline_escalation_wakeup")
                if wakeup is not None:
                    wakeup.set()
                return "webhook"
        ids = [i.id for i in items]
        if ids:
            session.execute(update(InboxItem).where(InboxItem.id.in_(ids),
                                                    InboxItem.alert_failed_at.is_(None))
                            .values(alert_failed_at=now))
    log.error("alert %s to %s by %s failed; marked in the inbox", row.id, row.clinic_id,
              row.target)
    return "marked"


def handle_status(app: Flask, sid: str, status: str, error_code: str | None = None) -> bool:
    """Record a status callback; a first failed report of an alert SMS falls back."""
    engine: Engine = app.extensions["calfline_store"].engine
    new = record_status(engine, sid, status, error_code)
    if new and status in FAILED_STATUSES:
        check_alert_failure(app, sid)
    return new


def check_alert_failure(app: Flask, sid: str) -> None:
    """If `sid` is an alert SMS that Twilio reported failed, fall back (once)."""
    engine: Engine = app.extensions["calfline_store"].engine
    with Session(engine) as session:
        failed = session.scalar(select(MessageStatus.id).where(
            MessageStatus.message_sid == sid, MessageStatus.status.in_(FAILED_STATUSES)))
        row = session.scalars(select(Escalation).where(Escalation.twilio_sid == sid)).first()
        session.expunge_all()
    if failed is not None and row is not None:
        alert_failed(app, row)
