"""The console's front-desk workflow pages: the inbox, and taking a conversation over.

Routes on the console blueprint (console.py signs staff in, checks every POST's
CSRF token and sends a 404 for another clinic's rows). Each action calls one
function of inbox.py or takeover.py, where an audit record can be added.
"""

from __future__ import annotations

from typing import Any

from flask import (
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from responder.dialogue.conversation import HELD_TEMPLATE
from responder.frontdesk import inbox, takeover
from responder.frontdesk.clinics import Clinic
from responder.frontdesk.console import bp
from responder.frontdesk.delivery import latest_statuses, utcnow
from responder.frontdesk.staff_audit import record_action
from responder.store import audit
from responder.store.clinic_conversations import clinic_conversation
from responder.store.inbox_items import OUTCOMES
from responder.store.timeline import TimelineEntry, timeline

KIND_LABELS = {"red_flag": "Red flag", "check_yes": "Check answered YES",
               "callback": "Callback request", "chronic_pain": "Chronic pain"}
OUTCOME_LABELS = {o: o.replace("_", " ").capitalize() for o in OUTCOMES}


def _engine() -> Any:
    return current_app.extensions["calfline_store"].engine


def _who() -> str:
    return str(session.get("username", ""))


@bp.get("/inbox")
def inbox_page() -> str:
    """Open items (urgent first), or the latest closed ones."""
    clinic: Clinic = g.clinic
    closed = request.args.get("show") == "closed"
    views = inbox.inbox_items(_engine(), clinic.id, closed=closed)
    return render_template("console/inbox.html", clinic=clinic, views=views, closed=closed,
                           kinds=KIND_LABELS, outcomes=OUTCOME_LABELS, now=utcnow())


@bp.post("/inbox/<int:item_id>/acknowledge")
def acknowledge_item(item_id: int) -> BaseResponse:
    """Mark an item seen by the signed-in staff member."""
    if inbox.acknowledge(_engine(), g.clinic.id, item_id, _who()) is None:
        abort(404)
    record_action(audit.ACKNOWLEDGE, f"inbox:{item_id}")
    return redirect(url_for("console.inbox_page", _anchor=f"item-{item_id}"))


@bp.post("/inbox/<int:item_id>/close")
def close_item(item_id: int) -> BaseResponse | tuple[str, int]:
    """Close an item with its outcome."""
    try:
        item = inbox.close(_engine(), g.clinic.id, item_id, _who(),
                           request.form.get("outcome", ""))
    except inbox.InboxError as exc:
        return render_template("console/error.html", title="Not closed", clinic=g.clinic,
                               message=f"This item was not closed: {exc}."), 400
    if item is None:
        abort(404)
    record_action(audit.CLOSE, f"inbox:{item_id}", detail=f"outcome={item.outcome}")
    return redirect(url_for("console.inbox_page"))


def _entry_json(entry: TimelineEntry, statuses: dict[str, str]) -> dict[str, Any]:
    return {"id": entry.id, "direction": entry.direction, "author": entry.author,
            "channel": entry.channel, "body": entry.body, "intent": entry.intent,
            "staff": entry.staff_user, "status": statuses.get(entry.twilio_sid or ""),
            "held": entry.template_id == HELD_TEMPLATE, "language": entry.language,
            "at": entry.created_at.strftime("%Y-%m-%d %H:%M:%S")}


@bp.get("/conversations/<int:conversation_id>/updates")
def conversation_updates(conversation_id: int) -> BaseResponse:
    """New messages since `after` and the delivery of staff replies, for the page's poll."""
    clinic: Clinic = g.clinic
    if clinic_conversation(_engine(), clinic.numbers, conversation_id) is None:
        abort(404)
    after = request.args.get("after", "0")
    entries = timeline(_engine(), clinic.numbers, conversation_id,
                       after_id=int(after) if after.isdigit() and len(after) < 19 else 0)
    staff = [e for e in timeline(_engine(), clinic.numbers, conversation_id) if e.staff_user]
    statuses = latest_statuses(_engine(), [e.twilio_sid or "" for e in staff + entries])
    held = takeover.takeover_of(current_app, clinic, conversation_id)
    active = held is not None and held.active(utcnow())
    return jsonify(messages=[_entry_json(e, statuses) for e in entries],
                   statuses={str(e.id): statuses.get(e.twilio_sid or "") for e in staff},
                   taken_over=active, held_by=held.held_by if held and active else None)


def _back(conversation_id: int, error: str | None = None) -> BaseResponse:
    if error:
        session["takeover_error"] = error
    return redirect(url_for("console.conversation", conversation_id=conversation_id))


@bp.post("/conversations/<int:conversation_id>/take-over")
def take_over(conversation_id: int) -> BaseResponse:
    """Take the conversation over: the line goes silent, staff reply."""
    if not takeover.take_over(current_app, g.clinic, conversation_id, _who()):
        abort(404)
    record_action(audit.TAKE_OVER, f"conversation:{conversation_id}")
    return _back(conversation_id)


@bp.post("/conversations/<int:conversation_id>/hand-back")
def hand_back(conversation_id: int) -> BaseResponse:
    """Give the conversation back to the line."""
    if not takeover.hand_back(current_app, g.clinic, conversation_id, _who()):
        abort(404)
    record_action(audit.HAND_BACK, f"conversation:{conversation_id}")
    return _back(conversation_id)


@bp.post("/conversations/<int:conversation_id>/reply")
def staff_reply(conversation_id: int) -> BaseResponse:
    """Send the typed reply to the patient from the clinic's number."""
    try:
        sent = takeover.staff_reply(current_app, g.clinic, conversation_id, _who(),
                                    request.form.get("text", ""))
    except takeover.TakeoverError as exc:
        session["takeover_draft"] = request.form.get("text", "")[:1600]
        return _back(conversation_id, str(exc))
    if sent is None:
        abort(404)
    record_action(audit.REPLY, f"conversation:{conversation_id}")
    return _back(conversation_id)
