"""Signed Twilio webhooks over real HTTP, sent at a steady rate, each timed and its TwiML parsed.

    traffic = SignedTraffic(base_url, TOKEN)
    sent = traffic.at_rate([Webhook(...), ...], per_second=20)   # one thread per request
    worst = max(s.seconds for s in sent)

Used by the fault tests (tests/channels/test_faults.py, test_disk_faults.py) and
bench/faults.py. Each request is signed with twilio's RequestValidator for the
exact URL, query string included, as Twilio signs it.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

CLIENT_TIMEOUT = 20.0  # longer than Twilio's 15 s: a late answer is measured, not cut


@dataclass
class Webhook:
    """One webhook to send: the path (with query) and the form Twilio would post."""

    form: dict[str, str]
    path: str = "/sms"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Sent:
    """What came back for one webhook."""

    webhook: Webhook
    status: int
    seconds: float
    body: bytes

    @property
    def twiml(self) -> ET.Element | None:
        """The parsed <Response>, or None if the body is not TwiML."""
        try:
            root = ET.fromstring(self.body)
        except ET.ParseError:
            return None
        return root if root.tag == "Response" else None

    @property
    def messages(self) -> list[str]:
        """The texts of the <Message> elements (an SMS reply)."""
        root = self.twiml
        return [] if root is None else [m.text or "" for m in root.iter("Message")]

    @property
    def spoken(self) -> list[str]:
        """Everything <Say> says (a call turn), SSML included."""
        root = self.twiml
        return [] if root is None else ["".join(s.itertext()) for s in root.iter("Say")]


class SignedTraffic:
    """Send signed webhooks to a running server."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base = base_url.rstrip("/")
        self.validator = RequestValidator(token)

    def send(self, webhook: Webhook) -> Sent:
        """POST one webhook and wait for the answer."""
        url = self.base + webhook.path
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, webhook.form),
                   **webhook.headers}
        request = urllib.request.Request(url, data=urlencode(webhook.form).encode(),
                                         headers=headers, method="POST")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                status, body = exc.code, exc.read()
        except OSError as exc:  # refused, reset or timed out: no answer at all
            status, body = 0, str(exc).encode()
        return Sent(webhook, status, time.monotonic() - started, body)

    def at_rate(self, webhooks: list[Webhook], per_second: float) -> list[Sent]:
        """Send each webhook 1/per_second after the previous one, without waiting for
        answers (as Twilio does), and return what came back, in sending order."""
        results: list[Sent | None] = [None] * len(webhooks)
        threads = []
        start = time.monotonic()
        for index, webhook in enumerate(webhooks):
            delay = start + index / per_second - time.monotonic()
            if delay > 0:
                time.sleep(delay)

            def run(i: int = index, w: Webhook = webhook) -> None:
                results[i] = self.send(w)

            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join(CLIENT_TIMEOUT + 5)
        return [r for r in results if r is not None]
