"""A conversation as the console shows it while staff work on it: every message, newest last.

Like clinic_conversations.py, every query takes the clinic's numbers and filters
on them in SQL. Each entry says who wrote it (patient, the line, or a staff
member) and carries Twilio's MessageSid so the console can show its delivery.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from responder.store.clinic_conversations import possible_row_id
from responder.store.models import Conversation, Message


@dataclass(frozen=True)
class TimelineEntry:
    """One message of a conversation."""

    id: int
    direction: str
    channel: str
    created_at: datetime
    body: str
    intent: str | None
    template_id: str | None
    staff_user: str | None
    twilio_sid: str | None
    language: str | None = None  # the message's language ("es"), when known

    @property
    def author(self) -> str:
        """Patient, CalfLine, or the staff member who typed it."""
        if self.direction == "in":
            return "Patient"
        return self.staff_user or "CalfLine"


def timeline(engine: Engine, numbers: Iterable[str], conversation_id: int,
             after_id: int = 0, limit: int = 500) -> list[TimelineEntry]:
    """Messages of a conversation on `numbers` with an id above `after_id`, oldest first."""
    if not possible_row_id(engine, conversation_id):
        return []
    stmt = (select(Message).join(Conversation)
            .where(Message.conversation_id == conversation_id,
                   Conversation.our_number.in_(list(numbers)), Message.id > after_id)
            .order_by(Message.created_at, Message.id).limit(limit))
    with Session(engine) as session:
        return [TimelineEntry(m.id, m.direction, m.channel, m.created_at, m.body, m.intent,
                              m.template_id, m.staff_user, m.twilio_sid, m.language)
                for m in session.scalars(stmt)]
