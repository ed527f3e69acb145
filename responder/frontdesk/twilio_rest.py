"""Send one SMS through Twilio's REST API, with a status callback and a time limit.

Used for clinic alerts (escalation.py) and staff replies (takeover.py). Twilio
reports what happens to each message to the StatusCallback URL
(CALFLINE_PUBLIC_BASE_URL + /twilio/status, responder/channels/status.py);
without a public base URL no callback is asked for. The first status (queued)
is never called back (twilio.com/docs/messaging/guides/outbound-message-status-
in-status-callbacks), so it is recorded from the API's answer here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from responder.frontdesk.delivery import record_status

# Seconds to wait for Twilio's API; Twilio's HTTP client waits for ever by default.
API_TIMEOUT_SECONDS = 10
STATUS_PATH = "/twilio/status"


class SendError(Exception):
    """Raise when Twilio did not take a message; the text says why (Twilio's error)."""


@dataclass(frozen=True)
class Sent:
    """What Twilio answered to a send."""

    sid: str
    status: str


def status_callback_url(config: Mapping[str, Any]) -> str | None:
    """Where Twilio reports delivery: the public base URL's /twilio/status, if configured."""
    base = str(config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    return base + STATUS_PATH if base else None


def send_sms(config: Mapping[str, Any], engine: Engine, to: str, from_: str, body: str) -> Sent:
    """Send `body` from one of our numbers; record its first status; raise SendError."""
    from twilio.base.exceptions import TwilioException, TwilioRestException
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    sid, token = config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"]
    if not sid or not token:
        raise SendError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are needed to send SMS")
    client = Client(sid, token, http_client=TwilioHttpClient(timeout=API_TIMEOUT_SECONDS))
    client.api.base_url = str(config["TWILIO_API_URL"]).rstrip("/")
    options: dict[str, Any] = {"to": to, "from_": from_, "body": body}
    callback = status_callback_url(config)
    if callback:
        options["status_callback"] = callback
    try:
        message = client.messages.create(**options)
    except TwilioRestException as exc:
        # Twilio's error code says why (twilio.com/docs/api/errors), e.g. 21610: opted out.
        raise SendError(f"Twilio error {exc.code}: {exc.msg}") from exc
    except (TwilioException, OSError) as exc:
        raise SendError(f"Twilio could not be reached: {exc}") from exc
    sent = Sent(str(message.sid), str(message.status or "queued"))
    record_status(engine, sent.sid, sent.status)
    return sent
