"""Staff take a conversation over: they reply from the console, and the line stays silent.

take_over(), staff_reply() and hand_back() are the staff actions the console
calls (one place each for an audit record). While a conversation is taken
over, the SMS webhook answers only what safety needs (responder/dialogue/
conversation.py), and keeps the patient's number on the conversation so staff
can reply; a hand-back forgets it. A take-over ends by the button, or by itself
CALFLINE_TAKEOVER_MINUTES after staff last acted (hand_back_expired(), run by
the escalation worker; the webhook already treats it as ended).
A staff reply goes out through Twilio's REST API from the clinic's number, with a
status callback, and is stored as an outbound message marked with the staff member.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import Flask
from sqlalchemy import CursorResult, Engine, delete, select, update
from sqlalchemy.orm import Session

from responder.dialogue.respond import MAX_MESSAGE_CHARS
from responder.frontdesk.clinics import Clinic
from responder.frontdesk.delivery import utcnow
from responder.frontdesk.twilio_rest import SendError, send_sms
from responder.store.clinic_conversations import possible_row_id
from responder.store.escalation_outbox import Escalation
from responder.store.inbox_items import InboxItem
from responder.store.models import Conversation, Message

STAFF_TEMPLATE = "staff"  # template_id of a reply a person typed


class TakeoverError(Exception):
    """Raise when a staff action cannot apply; the text is shown to staff."""


@dataclass(frozen=True)
class Takeover:
    """Who has a conversation, and until when if nobody replies."""

    held_by: str
    held_at: datetime
    last_action: datetime
    ends_at: datetime
    has_number: bool

    def active(self, now: datetime) -> bool:
        """True until the hand-back time."""
        return now < self.ends_at


def _hold(app: Flask) -> timedelta:
    return timedelta(minutes=float(app.config["TAKEOVER_MINUTES"]))


def _conversation(session: Session, clinic: Clinic, conversation_id: int) -> Conversation | None:
    if not possible_row_id(session.get_bind(), conversation_id):  # type: ignore[arg-type]
        return None
    return session.scalars(select(Conversation).where(
        Conversation.id == conversation_id,
        Conversation.our_number.in_(clinic.numbers))).first()


def takeover_of(app: Flask, clinic: Clinic, conversation_id: int) -> Takeover | None:
    """The conversation's take-over if it has one (even one past its time)."""
    engine: Engine = app.extensions["calfline_store"].engine
    with Session(engine) as session:
        row = _conversation(session, clinic, conversation_id)
        if row is None or not row.held_by or row.held_at is None:
            return None
        last = max(t for t in (row.held_at, row.held_reply_at) if t)
        return Takeover(row.held_by, row.held_at, last, last + _hold(app),
                        bool(row.held_number))


def _known_number(session: Session, clinic: Clinic, conversation_id: int) -> str | None:
    """The patient's number if the front desk still holds it (an open item or alert)."""
    number = session.scalar(select(InboxItem.patient_number).where(
        InboxItem.conversation_id == conversation_id, InboxItem.clinic_id == clinic.id,
        InboxItem.patient_number.is_not(None)).order_by(InboxItem.id.desc()).limit(1))
    if number:
        return number
    return session.scalar(select(Escalation.patient_number).where(
        Escalation.conversation_id == conversation_id, Escalation.clinic_id == clinic.id,
        Escalation.patient_number.is_not(None)).order_by(Escalation.id.desc()).limit(1))


def take_over(app: Flask, clinic: Clinic, conversation_id: int, username: str,
              now: datetime | None = None) -> bool:
    """Staff action: `username` takes the conversation; False if not this clinic's."""
    engine: Engine = app.extensions["calfline_store"].engine
    now = now or utcnow()
    with Session(engine) as session, session.begin():
        row = _conversation(session, clinic, conversation_id)
        if row is None:
            return False
        row.held_by, row.held_at, row.held_reply_at = username[:64], now, None
        row.held_number = row.held_number or _known_number(session, clinic, conversation_id)
    return True


def hand_back(app: Flask, clinic: Clinic, conversation_id: int, username: str) -> bool:
    """Staff action: give the conversation back to the line; False if not this clinic's."""
    engine: Engine = app.extensions["calfline_store"].engine
    with Session(engine) as session, session.begin():
        row = _conversation(session, clinic, conversation_id)
        if row is None:
            return False
        row.held_by = row.held_at = row.held_reply_at = row.held_number = None
    return True


def hand_back_expired(app: Flask, now: datetime | None = None) -> int:
    """End every take-over whose staff have not acted for CALFLINE_TAKEOVER_MINUTES."""
    engine: Engine = app.extensions["calfline_store"].engine
    cutoff = (now or utcnow()) - _hold(app)
    quiet = (Conversation.held_at < cutoff) & (
        Conversation.held_reply_at.is_(None) | (Conversation.held_reply_at < cutoff))
    with Session(engine) as session, session.begin():
        result = cast(CursorResult[Any], session.execute(
            update(Conversation).where(Conversation.held_by.is_not(None), quiet).values(
                held_by=None, held_at=None, held_reply_at=None, held_number=None)))
        return int(result.rowcount)


def staff_reply(app: Flask, clinic: Clinic, conversation_id: int, username: str,
                text: str, now: datetime | None = None) -> int | None:
    """Staff action: send `text` to the patient; return the stored message's id.

    None when the conversation is not this clinic's; TakeoverError when it cannot go
    out now (not taken over, no number yet, opted out, Twilio refused).
    """
    text = text.strip()
    if not text:
        raise TakeoverError("Type a reply first.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise TakeoverError(f"A text can hold at most {MAX_MESSAGE_CHARS} characters.")
    engine: Engine = app.extensions["calfline_store"].engine
    now = now or utcnow()
    held = takeover_of(app, clinic, conversation_id)
    with Session(engine) as session, session.begin():
        row = _conversation(session, clinic, conversation_id)
        if row is None:
            return None
        if held is None or not held.active(now):
            raise TakeoverError("Take the conversation over before replying.")
        if row.opted_out:
            raise TakeoverError("This patient texted STOP: no text can be sent to them.")
        if not row.held_number:
            raise TakeoverError("The patient's number is not known yet: you can reply "
                                "once they text again.")
        to, from_ = row.held_number, row.our_number
        message = Message(conversation_id=row.id, direction="out", channel="sms",
                          created_at=now, body=text, template_id=STAFF_TEMPLATE,
                          staff_user=username[:64])
        session.add(message)
        session.flush()
        message_id = int(message.id)
        row.held_reply_at, row.updated_at = now, now
    try:
        sent = send_sms(app.config, engine, to, from_, text)
    except SendError as exc:
        with Session(engine) as session, session.begin():  # never sent: not in the record
            session.execute(delete(Message).where(Message.id == message_id))
        raise TakeoverError(f"The text was not sent: {exc}") from exc
    with Session(engine) as session, session.begin():
        session.execute(update(Message).where(Message.id == message_id).values(
            twilio_sid=sent.sid[:64]))
    return message_id
