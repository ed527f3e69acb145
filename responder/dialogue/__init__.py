"""What the line says back: the Responder, reviewed replies, SMS context and the call flow.

Built on responder.nlu; no Flask, no web request, no database. The store saves
a `ConversationState` and a channel renders a `Reply` or a call `Step`.
"""

from responder.dialogue.call_flow import CallFlow, CallRules, CallState, Heard, Step, call_rules
from responder.dialogue.conversation import ConversationState, Turn, respond
from responder.dialogue.replies import (
    Reply,
    render_intent,
    render_reply,
    render_system,
    template_variables,
)
from responder.dialogue.respond import MAX_MESSAGE_CHARS, Answer, Responder, clean_text

__all__ = [
    "MAX_MESSAGE_CHARS",
    "Answer",
    "CallFlow",
    "CallRules",
    "CallState",
    "ConversationState",
    "Heard",
    "Reply",
    "Responder",
    "Step",
    "Turn",
    "call_rules",
    "clean_text",
    "render_intent",
    "render_reply",
    "render_system",
    "respond",
    "template_variables",
]
