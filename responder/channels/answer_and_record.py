"""Answer one inbound message with its conversation's context, and record both. No Flask.

Web routes (SMS now, voice turns too) call answer_and_record(); a webhook that
Twilio re-sends gets the reply recorded the first time, not a second answer.
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
) -> StoredReply:
    """Return the reply to send: the recorded one for a re-sent webhook, else a new one."""
    now = now or utcnow()

    def decide(state: ConversationState) -> Turn:
        return respond(responder, inbound.body, inbound.channel, variables, state, now,
                       context_window)

    # A re-sent webhook is caught by the insert itself (its dedupe key is unique), which
    # then returns the first reply: one look-up less for every message that is not a retry.
    return store.exchange(inbound, decide, now)
