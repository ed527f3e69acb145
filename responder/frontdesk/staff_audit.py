"""Record what the signed-in staff member just did, in one line of a view.

    record_action(audit.TAKE_OVER, f"conversation:{conversation_id}")

The clinic and the actor come from the request (g.clinic, the session's
username) unless given, e.g. at sign-in before the session holds them.
The row goes to responder.store.audit, the append-only audit trail.
"""

from __future__ import annotations

from flask import current_app, g, session

from responder.store import audit


def record_action(action: str, subject: str = "", detail: str = "",
                  clinic_id: str | None = None, actor: str | None = None) -> None:
    """Append an audit event for this request's clinic and staff member."""
    engine = current_app.extensions["calfline_store"].engine
    if clinic_id is None:
        clinic_id = g.clinic.id
    if actor is None:
        actor = session.get("username", "")
    audit.record(engine, clinic_id, actor, action, subject, detail)
