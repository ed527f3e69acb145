"""Twilio's incoming-message webhook: form fields in, TwiML out."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from flask import Blueprint, Flask, Response, g
from twilio.twiml.messaging_response import MessagingResponse

from responder.channels.fallback import answer_text
from responder.channels.flask_context import this_app, this_request
from responder.channels.signatures import twilio_webhook
from responder.frontdesk.clinics import clinic_for_number, variables_for_clinic
from responder.store.conversation_store import Inbound, idempotency_key, utcnow

bp = Blueprint("sms", __name__)


# Distinct reply texts whose TwiML is kept (the replies are templates: a few hundred).
CACHED_REPLIES = 512


@lru_cache(maxsize=CACHED_REPLIES)
def reply_twiml(text: str) -> str:
    """The TwiML that sends `text` (nothing when empty), built by MessagingResponse once
    per distinct reply: ElementTree's serializer costs about 3% of a webhook, for the
    same few hundred template texts."""
    response = MessagingResponse()
    if text:
        # An empty reply (opt-out, opted-out sender) sends nothing: Twilio confirms STOP.
        response.message(text)
    return str(response)


def twiml(body: str, status: int = 200) -> Response:
    """Wrap a TwiML document in a response with Twilio's expected content type."""
    return Response(body, status=status, mimetype="application/xml")


def clinic_variables(app: Flask | None = None, our_number: str | None = None) -> dict[str, str]:
    """Template variables for the clinic owning the number texted (`To`), else defaults.

    With a clinic, {callback_when} says when it calls back a patient who asks for a
    person (its opening hours, now); handoff replies then promise that callback.
    `app` and `our_number` default to the request's own; the SMS webhook, which has
    both at hand already, passes them.
    """
    app = this_app() if app is None else app
    clinic = clinic_for_number(app, this_request().form.get("To") if our_number is None
                               else our_number)
    variables = variables_for_clinic(app, clinic)
    if clinic is not None:
        now = utcnow()
        variables["callback_when"] = clinic.callback_when(now)
        variables["callback_when_es"] = clinic.callback_when(now, "es")
    return variables


@bp.route("/sms", methods=["POST"])
@twilio_webhook
def incoming_sms() -> Response:
    """Answer one SMS in its conversation's context; a re-sent webhook gets the same reply.

    If the database fails or is slow the reply still goes out (responder/channels/fallback.py).
    """
    app, req = this_app(), this_request()
    form = req.form
    # MessageSid names the message; the idempotency token covers webhooks without one.
    sid = form.get("MessageSid") or form.get("SmsSid")
    token = req.headers.get("I-Twilio-Idempotency-Token")
    inbound = Inbound("sms", form.get("From", ""), form.get("To", ""), form.get("Body", ""),
                      sid, idempotency_key("sms", sid) or idempotency_key("sms-token", token))
    minutes = float(app.config["CONTEXT_MINUTES"])
    # Recorded with its clinic alert queued in the outbox, or spooled until the database is back.
    reply = answer_text(inbound, clinic_variables(app, inbound.our_number),
                        timedelta(minutes=minutes))
    g.calfline_intent = reply.intent  # for the request log line
    return twiml(reply_twiml(reply.text))
