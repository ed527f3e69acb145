"""The escalation outbox: one row per notification owed to a clinic, kept until delivered.

Rows live in the conversation store's database (same Base and naming), so a
notification survives a restart. Its migration is
responder/store/migrations/versions/0002_escalation_outbox.py.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from responder.store.models import Base, UTCDateTime


class Escalation(Base):
    """A red-flag (or chronic-pain) message a clinic must hear about, by one route."""

    __tablename__ = "escalations"
    __table_args__ = (
        # One notification per message and route, however often the webhook is re-sent.
        UniqueConstraint("event_key", "target"),
        Index(None, "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_key: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(8))  # "webhook" or "sms"
    clinic_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(8))
    intent: Mapped[str] = mapped_column(String(64))
    our_number: Mapped[str] = mapped_column(String(64))
    # The clinic must be able to call back; kept only until delivered or given up.
    patient_number: Mapped[str | None] = mapped_column(String(64), nullable=True)
    patient_last4: Mapped[str] = mapped_column(String(4), default="")
    conversation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(8), default="pending")  # pending/sent/failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Twilio's MessageSid of an alert SMS: its status callbacks (message_statuses) name it.
    twilio_sid: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
