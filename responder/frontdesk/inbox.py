"""The inbox of what needs a person: queue, list, acknowledge, close, re-send if unseen.

queue_inbox_item() runs with the webhook's store work (beside the escalation
outbox row), one item per message and kind. Staff acknowledge an item (who,
when) and close it with an outcome; closing forgets the patient's number. The
escalation worker calls resend_overdue(): an urgent item nobody acknowledged
within CALFLINE_ACK_MINUTES is alerted again, by the clinic's other route
(SMS <-> webhook), and marked re-sent. acknowledge() and close() are the staff
actions the console calls (one place each for an audit record).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import Flask
from sqlalchemy import CursorResult, Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from responder.frontdesk.clinics import Clinic, ClinicDirectory
from responder.frontdesk.delivery import RESEND_PREFIX, latest_statuses, utcnow
from responder.store import audit
from responder.store.clinic_conversations import possible_row_id
from responder.store.escalation_outbox import Escalation
from responder.store.inbox_items import OUTCOMES, URGENT_KINDS, InboxItem
from responder.store.turns import Inbound, StoredReply

RESEND_BATCH = 20


class InboxError(Exception):
    """Raise when a staff action cannot apply (closed already, unknown outcome)."""


def inbox_kind(clinic: Clinic, intent: str | None, reason: str = "") -> str | None:
    """What kind of item a message makes for this clinic; None when it needs no person."""
    if intent == "red_flag":
        return "check_yes" if reason == "check_yes" else "red_flag"
    if intent == "handoff":
        return "callback"
    if intent == "chronic_pain" and clinic.escalate_chronic_pain:
        return "chronic_pain"
    return None


def queue_inbox_item(engine: Engine, clinic: Clinic, inbound: Inbound, reply: StoredReply,
                     event_key: str, reason: str = "") -> bool:
    """Add the item this message makes, once per message and kind; True if added."""
    kind = inbox_kind(clinic, reply.intent, reason)
    if kind is None:
        return False
    digits = "".join(ch for ch in inbound.sender if ch.isdigit())
    row = InboxItem(
        clinic_id=clinic.id, kind=kind, urgent=kind in URGENT_KINDS, event_key=event_key,
        conversation_id=reply.conversation_id or None, channel=inbound.channel,
        our_number=inbound.our_number[:64], patient_number=inbound.sender[:64] or None,
        patient_last4=digits[-4:], body=inbound.body[:1600], created_at=utcnow())
    try:
        with Session(engine) as session, session.begin():
            session.add(row)
    except IntegrityError:
        return False  # a re-sent webhook, or replayed from the spool
    return True


@dataclass(frozen=True)
class InboxView:
    """One item as the console shows it, with how its alert fared."""

    item: InboxItem
    alert_status: str | None  # Twilio's furthest status of the alert SMS, if one was sent

    @property
    def state(self) -> str:
        """open, acknowledged or closed."""
        if self.item.closed_at:
            return "closed"
        return "acknowledged" if self.item.acknowledged_at else "open"


def inbox_items(engine: Engine, clinic_id: str, closed: bool = False,
                limit: int = 200) -> list[InboxView]:
    """A clinic's open items (urgent first, oldest first) or its latest closed ones."""
    stmt = select(InboxItem).where(InboxItem.clinic_id == clinic_id)
    if closed:
        stmt = stmt.where(InboxItem.closed_at.is_not(None)).order_by(InboxItem.closed_at.desc())
    else:
        stmt = stmt.where(InboxItem.closed_at.is_(None)).order_by(
            InboxItem.urgent.desc(), InboxItem.created_at, InboxItem.id)
    with Session(engine) as session:
        items = list(session.scalars(stmt.limit(limit)))
        keys = [i.event_key for i in items] + [f"{RESEND_PREFIX}{i.id}" for i in items]
        alerts = list(session.execute(select(Escalation.event_key, Escalation.twilio_sid)
                                      .where(Escalation.event_key.in_(keys),
                                             Escalation.target == "sms")))
        session.expunge_all()
    statuses = latest_statuses(engine, [sid for _, sid in alerts if sid])
    by_key: dict[str, str] = {}
    for key, sid in alerts:
        if sid and sid in statuses:
            by_key[key] = statuses[sid]
    return [InboxView(i, by_key.get(f"{RESEND_PREFIX}{i.id}") or by_key.get(i.event_key))
            for i in items]


def open_count(engine: Engine, clinic_id: str) -> int:
    """How many items of a clinic are not closed yet."""
    with Session(engine) as session:
        return int(session.scalar(select(func.count(InboxItem.id)).where(
            InboxItem.clinic_id == clinic_id, InboxItem.closed_at.is_(None))) or 0)


def get_item(engine: Engine, clinic_id: str, item_id: int) -> InboxItem | None:
    """One item of this clinic's; None for another clinic's (a 404, never a peek)."""
    if not possible_row_id(engine, item_id):
        return None
    with Session(engine) as session:
        item = session.scalars(select(InboxItem).where(
            InboxItem.id == item_id, InboxItem.clinic_id == clinic_id)).first()
        session.expunge_all()
        return item


def acknowledge(engine: Engine, clinic_id: str, item_id: int, username: str,
                now: datetime | None = None) -> InboxItem | None:
    """Staff action: mark an item seen by `username`; the first acknowledgement stands."""
    if get_item(engine, clinic_id, item_id) is None:
        return None
    with Session(engine) as session, session.begin():
        session.execute(update(InboxItem).where(
            InboxItem.id == item_id, InboxItem.clinic_id == clinic_id,
            InboxItem.acknowledged_at.is_(None)).values(
            acknowledged_at=now or utcnow(), acknowledged_by=username[:64]))
    return get_item(engine, clinic_id, item_id)


def close(engine: Engine, clinic_id: str, item_id: int, username: str, outcome: str,
          now: datetime | None = None) -> InboxItem | None:
    """Staff action: close an item with its outcome; forgets the patient's number."""
    if outcome not in OUTCOMES:
        raise InboxError(f"pick one of: {', '.join(o.replace('_', ' ') for o in OUTCOMES)}")
    item = get_item(engine, clinic_id, item_id)
    if item is None:
        return None
    if item.closed_at is not None:
        raise InboxError(f"already closed by {item.closed_by}")
    now = now or utcnow()
    with Session(engine) as session, session.begin():
        session.execute(update(InboxItem).where(
            InboxItem.id == item_id, InboxItem.clinic_id == clinic_id,
            InboxItem.closed_at.is_(None)).values(
            closed_at=now, closed_by=username[:64], outcome=outcome, patient_number=None,
            # Closing an item is seeing it: an unacknowledged one is acknowledged now.
            acknowledged_at=func.coalesce(InboxItem.acknowledged_at, now),
            acknowledged_by=func.coalesce(InboxItem.acknowledged_by, username[:64])))
    return get_item(engine, clinic_id, item_id)


def resend_routes(clinic: Clinic, used: set[str]) -> tuple[str, ...]:
    """The other configured route(s) than the first alert's; the same one if it is all."""
    routes = clinic.alert_routes()
    return tuple(r for r in routes if r not in used) or routes


def _resend_one(session: Session, clinic: Clinic, item: InboxItem, now: datetime) -> bool:
    claimed = cast(CursorResult[Any], session.execute(update(InboxItem).where(
        InboxItem.id == item.id, InboxItem.resent_at.is_(None),
        InboxItem.acknowledged_at.is_(None), InboxItem.closed_at.is_(None),
    ).values(resent_at=now)))
    if claimed.rowcount != 1:
        return False  # acknowledged meanwhile, or another worker has it
    used = set(session.scalars(select(Escalation.target).where(
        Escalation.event_key == item.event_key)))
    routes = resend_routes(clinic, used)
    # In the same transaction: the audit row exists exactly when the re-send does.
    audit.record(session, clinic.id, audit.SYSTEM_ACTOR, audit.RESEND, f"inbox:{item.id}",
                 detail="routes=" + ",".join(routes))
    for route in routes:
        session.add(Escalation(
            event_key=f"{RESEND_PREFIX}{item.id}", target=route, clinic_id=clinic.id,
            channel=item.channel, intent="red_flag", our_number=item.our_number,
            patient_number=item.patient_number, patient_last4=item.patient_last4,
            conversation_id=item.conversation_id, body=item.body, created_at=utcnow(),
            status="pending", attempts=0, next_attempt_at=utcnow()))
    return True


def resend_overdue(app: Flask, now: datetime | None = None) -> int:
    """Alert again about urgent items nobody acknowledged in time; return how many."""
    engine: Engine = app.extensions["calfline_store"].engine
    directory: ClinicDirectory = app.extensions["calfline_clinics"]
    clinics = [c.id for c in directory.clinics.values() if c.alert_routes()]
    if not clinics:
        return 0
    now = now or utcnow()
    cutoff = now - timedelta(minutes=float(app.config["ACK_MINUTES"]))
    with Session(engine) as session:
        due = list(session.scalars(select(InboxItem).where(
            InboxItem.urgent.is_(True), InboxItem.acknowledged_at.is_(None),
            InboxItem.closed_at.is_(None), InboxItem.resent_at.is_(None),
            InboxItem.created_at <= cutoff, InboxItem.clinic_id.in_(clinics),
        ).order_by(InboxItem.created_at).limit(RESEND_BATCH)))
        session.expunge_all()
    resent = 0
    for item in due:
        with Session(engine) as session, session.begin():
            resent += _resend_one(session, directory.clinics[item.clinic_id], item, now)
    if resent:
        app.extensions["calfline_escalation_wakeup"].set()
    return resent
