"""Answer one inbound text with its conversation's context, and record both. No Flask.

answer_and_record() is the normal path: the sender's state from the store, the
reply, one record (a webhook that Twilio re-sends gets the reply recorded the
first time, not a second answer). answer_without_store() is the path when the
database failed: the same rules on an empty context (responder/channels/fallback.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from responder.dialogue.conversation import ConversationState, Turn, respond
from responder.dialogue.respond import Responder
from responder.store.conversation_store import ConversationStore, Inbound, StoredReply, utcnow


def answer_and_record(
    store: ConversationStore,
    responder: Responder,
    inbound: Inbound,
    variables: Mapping[str, str] | None,
    context_window: timedelta,
    now: datetime | None = None,
    hold: timedelta | None = None,
) -> tuple[StoredReply, Turn]:
    """Return the reply to send (the recorded one for a re-sent webhook) and the turn decided.

    `hold` is how long a staff take-over lasts after staff last acted (silent line).
    """
    now = now or utcnow()
    decided: list[Turn] = []
    # Matched before the store is asked: on SQLite decide() runs inside the write
    # transaction, and the matching (most of a turn's work) would hold the other
    # workers' writes back.
    match = responder.match(inbound.body)

    def decide(state: ConversationState) -> Turn:
        decided.append(respond(responder, inbound.body, inbound.channel, variables, state, now,
                               context_window, hold, match=match))
        return decided[-1]

    # A re-sent webhook is caught by the insert itself (its dedupe key is unique), which
    # then returns the first reply: one look-up less for every message that is not a retry.
    return store.exchange(inbound, decide, now), decided[-1]


def answer_without_store(
    responder: Responder,
    inbound: Inbound,
    variables: Mapping[str, str] | None,
    opted_out: bool,
    now: datetime,
) -> Turn:
    """Answer with no conversation context: red flags, commands and plain questions as
    always; "more", "1"/"2" and YES to the check question get what needs no context."""
    state = ConversationState(opted_out=opted_out, unknown=True)
    return respond(responder, inbound.body, inbound.channel, variables, state, now, timedelta(0))
