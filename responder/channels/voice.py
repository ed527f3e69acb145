"""Twilio's voice webhooks: a call's speech or keys in, spoken TwiML out.

The call flow itself lives in responder/dialogue/call_flow.py; this module only reads
the request, asks the flow for the next step, records the turn and queues a clinic
alert for a red flag (responder/channels/call_record.py; the spool when the database
fails, responder/channels/fallback.py), and renders the step with `VoiceResponse`.

A call is not SMS: an SMS opt-out does not silence what the line says on a
call, and "stop" on a call ends the call without opting the number out of SMS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, request, url_for
from flask.blueprints import BlueprintSetupState
from twilio.twiml.voice_response import Gather, Say, VoiceResponse

from responder.channels.call_record import call_turn_inbound
from responder.channels.fallback import record_call
from responder.channels.signatures import twilio_webhook
from responder.channels.sms import clinic_variables, twiml
from responder.dialogue.call_flow import (
    CallFlow,
    CallRules,
    CallState,
    Connect,
    HangUp,
    Heard,
    Listen,
    Speak,
    Step,
    call_rules,
    dialable,
    speech_hints,
)
from responder.dialogue.respond import Responder
from responder.frontdesk.clinics import ClinicDirectory
from responder.store.conversation_store import utcnow

bp = Blueprint("voice", __name__)

# <Gather speechTimeout="auto"> ends at the caller's first pause, which suits short
# answers. Twilio rejects "auto" once a speechModel is set (warning 13335: "use a
# positive integer for speechTimeout whenever you set speechModel"), so by default
# no speechModel is sent and Twilio picks the recognizer; a configured model gets
# this many seconds of silence instead (twilio.com/docs/voice/twiml/gather).
SPEECH_TIMEOUT_WITH_MODEL = "2"


@dataclass(frozen=True)
class VoiceSettings:
    """How calls sound and listen, read from app.config once at start-up."""

    rules: CallRules
    voice: str
    language: str
    speech_model: str
    hints: str
    # Per other language: (voice, BCP-47 code) for <Say> and <Gather>, and its hints.
    # The voice must speak the language, or Twilio fails the call (Polly.Lupe: es-US).
    voices: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    language_hints: Mapping[str, str] = field(default_factory=dict)

    def speaker(self, lang: str) -> tuple[str, str]:
        """Return the (voice, language code) that speaks `lang`; the default otherwise."""
        return self.voices.get(lang, (self.voice, self.language))

    def hints_for(self, lang: str) -> str:
        """Return the recognition hints for a Gather that listens in `lang`."""
        return self.language_hints.get(lang, self.hints)


@bp.record_once
def _load_settings(state: BlueprintSetupState) -> None:
    """Validate the voice settings when the blueprint is registered, not mid-call."""
    app = state.app
    responder: Responder = app.extensions["calfline"]
    config: dict[str, Any] = app.config
    app.extensions["calfline_voice"] = VoiceSettings(
        rules=call_rules(config),
        voice=str(config["VOICE"]),
        language=str(config["VOICE_LANGUAGE"]),
        speech_model=str(config["VOICE_SPEECH_MODEL"]),
        hints=speech_hints(responder.catalog),
        voices={"es": (str(config["VOICE_ES"]), str(config["VOICE_ES_LANGUAGE"]))},
        language_hints={lang: speech_hints(responder.catalog.localized(lang))
                        for lang in responder.catalog.translations},
    )


def _flow(settings: VoiceSettings) -> CallFlow:
    """A call flow for the clinic that owns the number called (`To`)."""
    rules = settings.rules
    directory: ClinicDirectory | None = current_app.extensions.get("calfline_clinics")
    clinic = directory.for_number(request.form.get("To")) if directory else None
    phone = clinic.escalation_phone if clinic else None
    emergency = current_app.config["EMERGENCY_NUMBER"]
    # Clinic numbers are checked as E.164 only; a short code like +911 is never dialled.
    if phone and dialable(phone, emergency):
        rules = replace(rules, escalation_phone=phone)
    # A caller asking for a person is offered the front desk while the clinic is open.
    front_desk = re.sub(r"[\s().-]", "", clinic.phone) if clinic else ""
    if clinic and clinic.open_at(utcnow()) and dialable(front_desk, emergency):
        rules = replace(rules, handoff_phone=front_desk)
    return CallFlow(current_app.extensions["calfline"], rules, clinic_variables())


def _say(text: str, slow: bool, settings: VoiceSettings, lang: str = "") -> Say:
    voice, language = settings.speaker(lang)
    say = Say(voice=voice, language=language)
    # Only Amazon Polly and Google voices read SSML such as <prosody>.
    if slow and voice.startswith(("Polly.", "Google.")):
        say.prosody(text, rate="slow")
    else:
        say.value = text
    return say


def _gather(action: Listen, settings: VoiceSettings) -> tuple[Gather, str]:
    url = f"{url_for('voice.answer_call')}?{urlencode(action.state.query())}"
    options: dict[str, Any] = {"speech_timeout": "auto"}
    if settings.speech_model:
        options = {"speech_model": settings.speech_model,
                   "speech_timeout": SPEECH_TIMEOUT_WITH_MODEL}
    gather = Gather(
        input="speech dtmf",
        action=url,
        method="POST",
        language=settings.speaker(action.language)[1],
        hints=settings.hints_for(action.language),
        num_digits=1,
        action_on_empty_result=True,
        **options,
    )
    if action.prompt:
        gather.append(_say(action.prompt, False, settings, action.language))
    return gather, url


def render(step: Step, settings: VoiceSettings) -> str:
    """Turn a call step into TwiML."""
    response = VoiceResponse()
    for action in step.actions:
        if isinstance(action, Speak):
            response.append(_say(action.text, action.slow, settings, action.language))
        elif isinstance(action, Listen):
            gather, url = _gather(action, settings)
            response.append(gather)
            # If the Gather ends with no input and Twilio does not call the action,
            # the call falls through to here: come back as an empty turn.
            response.redirect(url, method="POST")
        elif isinstance(action, Connect):
            response.dial(action.number)
        elif isinstance(action, HangUp):
            response.hangup()
    return str(response)


@bp.post("/voice")
@twilio_webhook
def incoming_call() -> Response:
    """Greet a new caller and listen."""
    settings: VoiceSettings = current_app.extensions["calfline_voice"]
    return twiml(render(_flow(settings).start(), settings))


@bp.post("/voice/answer")
@twilio_webhook
def answer_call() -> Response:
    """Answer what the caller said or pressed, record the turn, then listen again or hang up."""
    settings: VoiceSettings = current_app.extensions["calfline_voice"]
    form = request.form
    state = CallState.from_query(request.args, settings.rules)
    heard = Heard.from_fields(form.get("SpeechResult"), form.get("Confidence"), form.get("Digits"))
    # The step depends only on the turn's state and input, so a webhook Twilio re-sends
    # (same CallSid and turn) renders the same TwiML; the store keeps one record of it.
    step = _flow(settings).answer(state, heard)
    inbound = call_turn_inbound(
        form.get("From", ""), form.get("To", ""), heard, form.get("CallSid"), state.turn,
        request.headers.get("I-Twilio-Idempotency-Token"),
    )
    # Recorded with a red flag's clinic alert queued, or spooled while the database is away:
    # the step needs no database, so the caller hears it either way.
    record_call(inbound, step)
    g.calfline_intent = step.intent  # for the request log line
    return twiml(render(step, settings))
