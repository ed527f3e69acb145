"""Twilio's status callbacks for the SMS we send (clinic alerts, staff replies).

`POST /twilio/status` is named as the StatusCallback of every REST send
(responder/frontdesk/twilio_rest.py). It is signed like every webhook
(X-Twilio-Signature; a bad one is a 403) but has no per-sender limit: its
`From` is our own number, and a busy clinic's callbacks must never be refused.
Twilio may send the same status twice; responder/frontdesk/delivery.py keeps one.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, request
from sqlalchemy.exc import SQLAlchemyError

from responder.channels.flask_context import this_app
from responder.channels.ratelimit import count_failed_signature
from responder.channels.signatures import refusal
from responder.frontdesk.delivery import handle_status
from responder.store.message_statuses import KNOWN_STATUSES

bp = Blueprint("status", __name__)
# A message's SID: SM (SMS) or MM (MMS) and 32 hex digits (twilio.com/docs/glossary/what-is-a-sid).
_MESSAGE_SID = re.compile(r"^(?:SM|MM)[0-9a-fA-F]{32}$")
_ERROR_CODE = re.compile(r"^\d{1,8}$")


def _bad(reason: str, status: int = 400) -> Response:
    return Response(f"{reason}\n", status, mimetype="text/plain")


@bp.post("/twilio/status")
def message_status() -> Response:
    """Record one delivery status of one of our messages; 204 when taken."""
    reason = refusal()
    if reason is not None:
        limited = count_failed_signature()
        return limited if limited is not None else _bad(f"Forbidden: {reason}", 403)
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    if not _MESSAGE_SID.match(sid):
        return _bad("MessageSid is missing or not a message SID")
    if status not in KNOWN_STATUSES:
        return _bad(f"MessageStatus must be one of {', '.join(KNOWN_STATUSES)}")
    code = form.get("ErrorCode") or None
    if code is not None and not _ERROR_CODE.match(code):
        return _bad("ErrorCode must be a number")
    app = this_app()
    try:
        handle_status(app, sid, status, code)
    except SQLAlchemyError:
        # Twilio retries a failed callback; nothing is lost by refusing it for now.
        return _bad("the database is unavailable; try again", 503)
    return Response(status=204)
