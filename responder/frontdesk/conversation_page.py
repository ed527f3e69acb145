"""What the console's conversation page shows: messages with their authors and delivery,
and whether staff have taken the conversation over (takeover.py)."""

from __future__ import annotations

from typing import Any

from flask import current_app, session

from responder.dialogue.conversation import HELD_TEMPLATE
from responder.frontdesk import takeover
from responder.frontdesk.clinics import Clinic
from responder.frontdesk.delivery import latest_statuses, utcnow
from responder.store.timeline import timeline


def conversation_context(clinic: Clinic, conversation_id: int) -> dict[str, Any]:
    """What conversation.html needs beyond the row: messages, statuses, the take-over."""
    engine = current_app.extensions["calfline_store"].engine
    entries = timeline(engine, clinic.numbers, conversation_id)
    held = takeover.takeover_of(current_app, clinic, conversation_id)
    now = utcnow()
    return {
        "entries": entries,
        "statuses": latest_statuses(engine, [e.twilio_sid or "" for e in entries]),
        "held": held if held is not None and held.active(now) else None,
        "handed_back": held is not None and not held.active(now),
        "takeover_error": session.pop("takeover_error", None),
        "draft": session.pop("takeover_draft", ""),
        "last_id": max((e.id for e in entries), default=0),
        "held_template": HELD_TEMPLATE,
    }
