"""What the store takes in and hands back for one message: plain values, no SQL.

`Inbound` is a message as received, `StoredReply` the reply recorded for it, and
`SpooledTurn` a message the line answered while the database was away, waiting in
the spool (responder/store/spool.py) for ConversationStore.replay().
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from responder.nlu.matcher import Match

# How a message answered the check question, from the matcher's reason
# (responder/dialogue/replies.py answer_to_check): kept for the clinic dashboard.
CHECK_ANSWERS = {"check_yes": "yes", "check_no": "no"}


def check_answer(match: Match) -> str | None:
    """Return "yes" or "no" when `match` answered the check question, else None."""
    return CHECK_ANSWERS.get(match.reason)


@dataclass(frozen=True)
class Inbound:
    """One message as received; dedupe_key comes from idempotency_key()."""

    channel: str
    sender: str
    our_number: str
    body: str
    twilio_sid: str | None = None
    dedupe_key: str | None = None


@dataclass(frozen=True)
class StoredReply:
    """The reply recorded for an inbound message; duplicate means a re-sent webhook."""

    text: str
    template_id: str
    conversation_id: int
    intent: str | None = None
    duplicate: bool = False


@dataclass(frozen=True)
class SpooledTurn:
    """One answered message (or call turn) and the reply that went out, not yet recorded."""

    inbound: Inbound
    at: datetime
    intent: str | None
    confidence: float | None
    reply: str
    template_id: str
    opt_change: bool | None = None
    database: str = ""  # the store's database_id: never replayed into another database
    care: str | None = None  # the match's care level and check answer (dashboard figures)
    check_answer: str | None = None
