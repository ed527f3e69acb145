"""Twilio's delivery reports for the messages we send: one row per MessageSid and status.

Twilio POSTs a status callback (queued, sending, sent, delivered, undelivered,
failed, ...) to /twilio/status for every REST send that named a StatusCallback
(twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks);
the same status may arrive more than once, and the unique key keeps one row.
The initial status of a send (queued) is not called back, so the sender
records it from the API's answer. Migration: 0003_frontdesk_workflow.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from responder.store.models import Base, UTCDateTime

# Statuses that mean the message will not arrive.
FAILED_STATUSES = frozenset({"failed", "undelivered"})
# The statuses we keep, in the order a message goes through them.
KNOWN_STATUSES = ("accepted", "scheduled", "queued", "sending", "sent", "delivered",
                  "undelivered", "failed", "read", "canceled")


class MessageStatus(Base):
    """One delivery status Twilio reported for one of our messages."""

    __tablename__ = "message_statuses"
    __table_args__ = (UniqueConstraint("message_sid", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_sid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
