"""The staff console's reads: a clinic's conversations, with red-flag and chronic-pain marks.

Every query takes the clinic's own numbers and filters on them in SQL, so one
clinic's staff can never list or open another clinic's conversations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from responder.store.models import Conversation, Message

# The intents a clinic wants to see at a glance, in the order they are shown.
FLAG_INTENTS = ("red_flag", "chronic_pain")
# The largest id an Integer primary key can hold: SQLite's 64-bit rowid, PostgreSQL's
# 32-bit integer. A larger id in a URL names no row (a 404), rather than an overflow (a 500).
MAX_ROW_ID = {"postgresql": 2**31 - 1}


def possible_row_id(engine: Engine, row_id: int) -> bool:
    """True if `row_id` fits the database's integer primary key."""
    return 0 < row_id <= MAX_ROW_ID.get(engine.dialect.name, 2**63 - 1)


@dataclass(frozen=True)
class ConversationRow:
    """One line of the conversation list."""

    id: int
    our_number: str
    sender_last4: str
    updated_at: datetime
    last_intent: str | None
    opted_out: bool
    flags: tuple[str, ...]
    held_by: str | None = None  # the staff member who took it over (frontdesk/takeover.py)


def _flags(session: Session, ids: list[int]) -> dict[int, set[str]]:
    stmt = (select(Message.conversation_id, Message.intent).distinct()
            .where(Message.conversation_id.in_(ids), Message.direction == "in",
                   Message.intent.in_(FLAG_INTENTS)))
    found: dict[int, set[str]] = {}
    for conversation_id, intent in session.execute(stmt):
        found.setdefault(conversation_id, set()).add(intent or "")
    return found


def clinic_conversations(engine: Engine, numbers: Iterable[str], flag: str | None = None,
                         limit: int = 100) -> list[ConversationRow]:
    """Return the latest conversations on `numbers`, only those with `flag` when given."""
    numbers = list(numbers)
    if not numbers:
        return []
    stmt = select(Conversation).where(Conversation.our_number.in_(numbers))
    if flag in FLAG_INTENTS:
        flagged = select(Message.conversation_id).where(
            Message.direction == "in", Message.intent == flag)
        stmt = stmt.where(Conversation.id.in_(flagged))
    stmt = stmt.order_by(Conversation.updated_at.desc(), Conversation.id.desc()).limit(limit)
    with Session(engine) as session:
        rows = list(session.scalars(stmt))
        flags = _flags(session, [r.id for r in rows])
        return [
            ConversationRow(r.id, r.our_number, r.sender_last4, r.updated_at, r.last_intent,
                            r.opted_out,
                            tuple(f for f in FLAG_INTENTS if f in flags.get(r.id, set())),
                            r.held_by)
            for r in rows
        ]


def clinic_conversation(engine: Engine, numbers: Iterable[str],
                        conversation_id: int) -> ConversationRow | None:
    """Return one conversation if it is on `numbers`; None for anyone else's."""
    numbers = list(numbers)
    if not possible_row_id(engine, conversation_id):
        return None
    with Session(engine) as session:
        row = session.scalars(select(Conversation).where(
            Conversation.id == conversation_id, Conversation.our_number.in_(numbers))).first()
        if row is None:
            return None
        flags = _flags(session, [row.id]).get(row.id, set())
        return ConversationRow(row.id, row.our_number, row.sender_last4, row.updated_at,
                               row.last_intent, row.opted_out,
                               tuple(f for f in FLAG_INTENTS if f in flags))
