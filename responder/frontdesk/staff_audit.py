"""Record what the signed-in staff member just did, in one line of a view.

    record_action(audit.TAKE_OVER, f"conversation:{conversation_id}")

The clinic and the actor come from the request (g.clinic, the session's
username) unless given, e.g. at sign-in before the session holds them.
The row goes to responder.store.audit, the append-only audit trail. If the
database cannot take it, the same fields go to the `calfline.audit` log as
an error instead, so a database outage neither locks staff out of the
console nor loses the record.
"""

from __future__ import annotations

import logging

from flask import current_app, g, session
from sqlalchemy.exc import SQLAlchemyError

from responder.store import audit

log = logging.getLogger("calfline.audit")


def record_action(action: str, subject: str = "", detail: str = "",
                  clinic_id: str | None = None, actor: str | None = None) -> None:
    """Append an audit event for this request's clinic and staff member."""
    engine = current_app.extensions["calfline_store"].engine
    if clinic_id is None:
        clinic_id = g.clinic.id
    if actor is None:
        actor = session.get("username", "")
    try:
        audit.record(engine, clinic_id, actor, action, subject, detail)
    except SQLAlchemyError as exc:
        log.error("audit event not stored: %s", type(exc).__name__, extra={
            "audit_clinic": clinic_id, "audit_actor": actor, "audit_action": action,
            "audit_subject": subject, "audit_detail": detail})
