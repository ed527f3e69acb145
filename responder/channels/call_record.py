"""Record each turn of a phone call in the conversation store, once per webhook. No Flask.

Why not answer_and_record(): that runs the SMS conversation rules
(responder/dialogue/conversation.py), which would silence an SMS-opted-out caller, opt
a caller out of SMS for saying "stop" on a call, and read "1", "more" or "yes"
as answers to an earlier text. A call's words are answered by the call flow
(responder/dialogue/call_flow.py); this module stores what the caller said and what
the line spoke, with the same dedupe keys, hashing and locking as SMS.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from responder.dialogue.call_flow import Heard, Step
from responder.dialogue.conversation import ConversationState, Turn
from responder.dialogue.replies import Reply
from responder.nlu.matcher import Match
from responder.store.conversation_store import (
    ConversationStore,
    Inbound,
    StoredReply,
    idempotency_key,
    utcnow,
)

CHANNEL = "voice"
# A call does not change SMS opt-out, so these never become the SMS "last intent".
_NO_CONTEXT_INTENTS = frozenset({"opt_out", "opt_in"})


def call_turn_inbound(
    sender: str, our_number: str, heard: Heard, call_sid: str | None, turn: int,
    idempotency_token: str | None = None,
) -> Inbound:
    """One caller turn as an inbound message; CallSid + turn (or Twilio's token) dedupes it."""
    key = (idempotency_key(CHANNEL, call_sid, str(turn))
           or idempotency_key("voice-token", idempotency_token))
    return Inbound(CHANNEL, sender, our_number, heard.speech or heard.digits, call_sid, key)


def escalation_inbound(inbound: Inbound, intent: str | None) -> Inbound:
    """The inbound to queue_escalation(): one alert per call and intent, not per turn."""
    per_call = idempotency_key("voice-escalation", inbound.twilio_sid, intent or "none")
    return replace(inbound, dedupe_key=per_call or inbound.dedupe_key)


def call_turn(inbound: Inbound, step: Step,
              state: ConversationState | None = None) -> Turn:
    """The turn to record for a call step: what was matched and what the line spoke."""
    match = step.match
    if match is None:  # silence, the menu key, connect: nothing was matched
        match = Match(inbound.body, "", "", 0.0, reason="call_control")
    urgent = match.intent == "red_flag"
    return Turn(match, Reply(step.spoken, step.template_id, urgent),
                state or ConversationState())


def record_turn(
    store: ConversationStore, inbound: Inbound, step: Step, now: datetime | None = None
) -> StoredReply:
    """Store the caller's turn and what the line spoke; a re-sent turn is stored once."""
    if inbound.dedupe_key:
        stored = store.find_reply(inbound.dedupe_key)
        if stored is not None:
            return stored
    now = now or utcnow()
    match = step.match
    if (match is not None and match.intent not in _NO_CONTEXT_INTENTS
            and step.template_id.startswith(f"{match.intent}.")):
        # What the call answered is what a text right after it ("more", "yes") refers to.
        state = ConversationState(last_intent=match.intent, context_at=now)
    else:
        state = store.state(inbound.sender, inbound.our_number)  # keep the context as it is
    return store.record(inbound, call_turn(inbound, step, state), now)
