"""Twilio's incoming-message webhook: form fields in, TwiML out."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, request
from twilio.twiml.messaging_response import MessagingResponse

from responder.clinics import variables_for_number
from responder.respond import Responder

bp = Blueprint("sms", __name__)


def twiml(body: str, status: int = 200) -> Response:
    """Wrap a TwiML document in a response with Twilio's expected content type."""
    return Response(body, status=status, mimetype="application/xml")


def clinic_variables() -> dict[str, str]:
    """Template variables for the clinic owning the number texted (`To`), else defaults."""
    return variables_for_number(current_app, request.form.get("To"))


@bp.route("/sms", methods=["POST"])
def incoming_sms() -> Response:
    """Answer one SMS with the reviewed template for its intent."""
    responder: Responder = current_app.extensions["calfline"]
    answer = responder.answer(request.form.get("Body", ""), "sms", clinic_variables())
    g.calfline_intent = answer.match.intent  # for the request log line
    response = MessagingResponse()
    if answer.reply.text:
        # An empty reply (opt-out) sends nothing: Twilio confirms STOP itself.
        response.message(answer.reply.text)
    return twiml(str(response))
