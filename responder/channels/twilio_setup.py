"""`calfline twilio-setup`: point a Twilio number's SMS and voice webhooks at CalfLine.

Dry run by default: it shows the number's current webhooks beside the new
ones and changes nothing until run again with --apply. Uses the Twilio REST
API's IncomingPhoneNumber resource (twilio.com/docs/phone-numbers/api/
incomingphonenumber-resource): SmsUrl/SmsMethod and VoiceUrl/VoiceMethod.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlsplit

from responder.errors import CalfLineError

# E.164: a plus, then up to 15 digits (itu.int/rec/T-REC-E.164).
_E164 = re.compile(r"\+[1-9]\d{6,14}")
WEBHOOK_FIELDS = ("sms_url", "sms_method", "voice_url", "voice_method")


class TwilioSetupError(CalfLineError):
    """Raise when the number, URL or credentials cannot be used to configure Twilio."""


@dataclass(frozen=True)
class WebhookChange:
    """One webhook field of the number: what Twilio has now and what we want."""

    field: str
    current: str
    new: str

    @property
    def changed(self) -> bool:
        return self.current != self.new


def webhook_settings(base_url: str) -> dict[str, str]:
    """Return the number's webhook fields for a CalfLine served at `base_url`."""
    parts = urlsplit(base_url)
    # Twilio signs the exact URL it calls, and sends health data in the body:
    # only a plain HTTPS base (no query or fragment to get out of step) will do.
    if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise TwilioSetupError(
            f"--base-url {base_url!r}: give the public HTTPS address, e.g. https://calfline.example.org"
        )
    base = base_url.rstrip("/")
    return {"sms_url": f"{base}/sms", "sms_method": "POST",
            "voice_url": f"{base}/voice", "voice_method": "POST"}


def twilio_client(environ: Mapping[str, str], http_client: Any = None) -> Any:
    """Build a Twilio REST client from TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN."""
    from twilio.rest import Client

    sid, token = environ.get("TWILIO_ACCOUNT_SID"), environ.get("TWILIO_AUTH_TOKEN")
    if not sid or not token:
        raise TwilioSetupError("set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (Twilio Console)")
    return Client(sid, token, http_client=http_client, environment=dict(environ))


def plan_changes(client: Any, number: str, base_url: str) -> tuple[Any, list[WebhookChange]]:
    """Find the number on the account and compare its webhooks with CalfLine's."""
    if not _E164.fullmatch(number):
        raise TwilioSetupError(f"--number {number!r}: use E.164, e.g. +15551234567")
    wanted = webhook_settings(base_url)
    found = client.incoming_phone_numbers.list(phone_number=number, limit=2)
    if not found:
        raise TwilioSetupError(f"{number} is not a phone number on this Twilio account")
    record = found[0]
    changes = [WebhookChange(f, str(getattr(record, f, None) or ""), wanted[f])
               for f in WEBHOOK_FIELDS]
    return record, changes


def apply_changes(client: Any, record: Any, changes: list[WebhookChange]) -> None:
    """Send every webhook field to Twilio in one update call."""
    client.incoming_phone_numbers(record.sid).update(**{c.field: c.new for c in changes})


def report(number: str, sid: str, changes: list[WebhookChange], out: TextIO) -> None:
    """Print each field's current and new value, marking the unchanged ones."""
    out.write(f"Twilio number {number} ({sid})\n")
    for change in changes:
        current = change.current or "(not set)"
        if change.changed:
            out.write(f"  {change.field:<13} {current}  ->  {change.new}\n")
        else:
            out.write(f"  {change.field:<13} {current}  (unchanged)\n")


def run(
    number: str, base_url: str, apply: bool, out: TextIO,
    environ: Mapping[str, str] | None = None, http_client: Any = None,
) -> int:
    """Show, and with `apply` make, the webhook changes; return the exit status."""
    from twilio.base.exceptions import TwilioException

    client = twilio_client(os.environ if environ is None else environ, http_client)
    try:
        record, changes = plan_changes(client, number, base_url)
        report(number, record.sid, changes, out)
        if not any(c.changed for c in changes):
            out.write("Already pointing at CalfLine; nothing to do.\n")
        elif not apply:
            out.write("Dry run: nothing changed. Run again with --apply to make these changes.\n")
        else:
            apply_changes(client, record, changes)
            out.write("Updated.\n")
    except TwilioException as exc:
        raise TwilioSetupError(f"Twilio API: {exc}") from exc
    return 0


def add_twilio_setup_command(sub: Any) -> None:
    """Add `twilio-setup` to the calfline command line."""
    parser = sub.add_parser("twilio-setup",
                            help="point a Twilio number's SMS and voice webhooks at CalfLine")
    parser.add_argument("--number", required=True, help="the Twilio number, E.164: +15551234567")
    parser.add_argument("--base-url", required=True,
                        help="CalfLine's public HTTPS address, e.g. https://calfline.example.org")
    parser.add_argument("--apply", action="store_true",
                        help="make the change (default: only show it)")


def cmd_twilio_setup(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """Run `calfline twilio-setup` with credentials from the environment."""
    return run(args.number, args.base_url, args.apply, stdout)
