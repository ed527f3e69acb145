"""The ways in from Twilio: the SMS and voice webhooks and what guards them.

`sms.bp` and `voice.bp` read Twilio's form fields and answer TwiML; every
webhook passes `twilio_webhook` (X-Twilio-Signature checked, then the rate
limits: per IP for what fails the check, per sender for what passes) first. A
text is answered and recorded with its conversation's context
(`answer_and_record`), a call turn by the call flow (`record_turn`); when the
database fails or is slow they are answered anyway and spooled (`fallback.py`)
until `replay.py` records them. `calfline twilio-setup` points a number's
webhooks here. A new channel goes beside these; the layers below never import a
channel.
"""

from responder.channels.answer_and_record import answer_and_record
from responder.channels.call_record import record_turn
from responder.channels.ratelimit import MemoryCounter, install_rate_limits
from responder.channels.signatures import install_security, twilio_webhook
from responder.channels.sms import twiml
from responder.channels.twilio_setup import TwilioSetupError, webhook_settings
from responder.channels.voice import VoiceSettings

__all__ = [
    "MemoryCounter",
    "TwilioSetupError",
    "VoiceSettings",
    "answer_and_record",
    "install_rate_limits",
    "install_security",
    "record_turn",
    "twiml",
    "twilio_webhook",
    "webhook_settings",
]
