"""The front desk's inbox: one row per thing a person at a clinic must see to.

Red flags, checks answered YES, callback requests and (if the clinic's profile
asks) chronic pain. A row is acknowledged (who, when), then closed with an
outcome; an urgent row nobody acknowledged in time is re-sent by the clinic's
other alert route (resent_at). Rows live in the store's database, so nothing
is lost on a restart; the migration is 0003_frontdesk_workflow.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from responder.store.models import Base, UTCDateTime

# What an item is about, and how a person closed it.
KINDS = ("red_flag", "check_yes", "callback", "chronic_pain")
URGENT_KINDS = frozenset({"red_flag", "check_yes"})
OUTCOMES = ("called_back", "no_answer", "booked", "not_needed")


class InboxItem(Base):
    """Something on a clinic's number that needs a person."""

    __tablename__ = "inbox_items"
    __table_args__ = (
        # One item per message (or call) and kind, however often the webhook is re-sent.
        UniqueConstraint("event_key", "kind"),
        Index(None, "clinic_id", "closed_at", "created_at"),
        Index(None, "urgent", "acknowledged_at", "resent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    event_key: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    channel: Mapped[str] = mapped_column(String(8))
    our_number: Mapped[str] = mapped_column(String(64))
    # The clinic calls the patient back on this number; cleared when the item is closed.
    patient_number: Mapped[str | None] = mapped_column(String(64), nullable=True)
    patient_last4: Mapped[str] = mapped_column(String(4), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    resent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Set when no alert could reach the clinic (an SMS failed and there is no webhook).
    alert_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
