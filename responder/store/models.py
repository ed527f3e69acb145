"""The conversation store's tables; the same schema on SQLite and PostgreSQL.

No phone number of a person is stored in clear: a sender is an HMAC-SHA256
of the number (keyed with CALFLINE_HASH_SECRET) plus its last 4 digits. The
`To` number is the clinic's own Twilio number, stored in clear so a clinic
can find its conversations. Changes here need an Alembic migration in
responder/store/migrations/versions/ (alembic revision --autogenerate).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Store UTC; hand back aware datetimes even on SQLite, which keeps no zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the conversation store")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Meta(Base):
    """Facts about the database itself, e.g. which hash key wrote it."""

    __tablename__ = "calfline_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class Conversation(Base):
    """One sender talking to one of our numbers: opt-out status and short-term context."""

    __tablename__ = "conversations"
    # Every message rewrites its conversation's row (updated_at, the context), so no
    # index holds a column a message changes: PostgreSQL then updates the row in place
    # (a HOT update, no new index entries, dead versions pruned as pages are read, with
    # or without autovacuum), and a sender's state is read through the one index that
    # names the sender. The console's "latest first" sorts its clinic's rows instead
    # (migration 0006 says why and what that costs).
    __table_args__ = (UniqueConstraint("sender_hash", "our_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sender_hash: Mapped[str] = mapped_column(String(64))
    sender_last4: Mapped[str] = mapped_column(String(4), default="")
    our_number: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    clarify_first: Mapped[str | None] = mapped_column(String(64), nullable=True)
    clarify_second: Mapped[str | None] = mapped_column(String(64), nullable=True)
    context_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # Taken over by a staff member (responder/frontdesk/takeover.py): the line stays silent
    # but for red flags until held_reply_at (or held_at) is CALFLINE_TAKEOVER_MINUTES old.
    held_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    held_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The patient's number in clear, kept only while taken over, so staff can reply.
    held_number: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Message(Base):
    """One inbound message or one reply; a reply row with empty body means nothing was sent."""

    __tablename__ = "messages"
    __table_args__ = (Index(None, "conversation_id", "created_at"), Index(None, "created_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    direction: Mapped[str] = mapped_column(String(3))  # "in" or "out"
    channel: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    body: Mapped[str] = mapped_column(Text, default="")
    intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    template_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    twilio_sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # SHA-256 of the Twilio idempotency key: one inbound row per webhook, however often sent.
    dedupe_key: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    reply_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), nullable=True, unique=True
    )
    # Inbound rows only, for the clinic dashboard: the care level the line answered at
    # (intent contract, "Care levels") and "yes"/"no" when the message answered the
    # check question (None otherwise).
    care: Mapped[str | None] = mapped_column(String(16), nullable=True)
    check_answer: Mapped[str | None] = mapped_column(String(3), nullable=True)
    # A reply a staff member typed in the console (sent through Twilio's REST API).
    staff_user: Mapped[str | None] = mapped_column(String(64), nullable=True)
