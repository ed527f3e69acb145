"""A local stand-in for api.twilio.com that checks what Twilio checks, and calls back like it.

It serves the two resources CalfLine uses: IncomingPhoneNumbers (`calfline
twilio-setup`) and Messages (alert SMS, staff replies). Every request must carry
the account's Basic auth; a message must come From a number the account owns, go
To an E.164 number, have a Body of 1 to 1,600 characters and, when the test says
which, name that StatusCallback. Twilio's error codes are answered for each
(twilio.com/docs/api/errors: 20003, 21211, 21606, 21602, 21617, 21609, 21610).
After a send it POSTs status callbacks (sent, then delivered, undelivered or
failed) to the StatusCallback, signed with RequestValidator as Twilio signs them.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator

ACCOUNT = "AC" + "0" * 32
TOKEN = "test-token"
NUMBER = "+15551234567"
PN_SID = "PN" + "1" * 32
NUMBERS_PATH = f"/2010-04-01/Accounts/{ACCOUNT}/IncomingPhoneNumbers"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")


@dataclass
class FakeTwilio:
    """What the fake API holds, every request it was sent, and what it called back."""

    number: dict[str, Any]
    account: str = ACCOUNT
    token: str = TOKEN
    owned: set[str] = field(default_factory=lambda: {NUMBER})
    requests: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""
    expected_callback: str | None = None  # the StatusCallback every send must name
    outcomes: list[str] = field(default_factory=list)  # final status of the next sends
    refuse_next: list[int] = field(default_factory=list)  # error codes for the next sends
    callback_delay: float = 0.2
    call_back: bool = True  # False: the test posts the status callbacks itself
    lock: threading.Lock = field(default_factory=threading.Lock)

    def posts(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST"]

    def wait_for_messages(self, count: int, timeout: float = 20.0) -> list[dict[str, str]]:
        return _wait(lambda: self.messages, count, timeout, self.lock)

    def wait_for_callbacks(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        return _wait(lambda: self.callbacks, count, timeout, self.lock)


def _wait(read: Any, count: int, timeout: float, lock: threading.Lock) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with lock:
            if len(read()) >= count:
                return list(read())
        time.sleep(0.05)
    with lock:
        return list(read())


def _call_back(state: FakeTwilio, url: str, message: dict[str, str], final: str) -> None:
    """POST `sent`, then the final status, signed with the auth token (as Twilio does)."""
    for status in ("sent", final):
        time.sleep(state.callback_delay)
        params = {"AccountSid": state.account, "ApiVersion": "2010-04-01",
                  "From": message["From"], "To": message["To"], "MessageSid": message["sid"],
                  "SmsSid": message["sid"], "MessageStatus": status, "SmsStatus": status}
        if status in {"failed", "undelivered"}:
            params["ErrorCode"] = "30003"  # Unreachable destination handset
        signature = RequestValidator(state.token).compute_signature(url, params)
        request = urllib.request.Request(
            url, data=urllib.parse.urlencode(params).encode(), method="POST",
            headers={"X-Twilio-Signature": signature,
                     "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                code = response.status
        except urllib.error.HTTPError as exc:
            code = exc.code
            exc.close()
        except OSError:
            code = 0
        with state.lock:
            state.callbacks.append({"sid": message["sid"], "status": status, "answer": code})


def _handler(state: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _record(self, form: dict[str, list[str]]) -> None:
            url = urlsplit(self.path)
            with state.lock:
                state.requests.append({
                    "method": self.command, "path": url.path, "query": parse_qs(url.query),
                    "form": {k: v[0] for k, v in form.items()},
                    "auth": self.headers.get("Authorization", ""),
                })

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, code: int, message: str) -> None:
            self._send(status, {"code": code, "message": message, "status": status,
                                "more_info": f"https://www.twilio.com/docs/errors/{code}"})

        def _authorized(self) -> bool:
            expected = base64.b64encode(f"{state.account}:{state.token}".encode()).decode()
            if self.headers.get("Authorization", "") != f"Basic {expected}":
                self._error(401, 20003, "Authenticate")
                return False
            return True

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._record({})
            if not self._authorized():
                return
            query = parse_qs(urlsplit(self.path).query)
            matches = [state.number] if query.get("PhoneNumber") == [NUMBER] else []
            self._send(200, {"incoming_phone_numbers": matches, "next_page_uri": None,
                             "page": 0, "page_size": 2, "uri": self.path})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
            self._record(form)
            if not self._authorized():
                return
            path = urlsplit(self.path).path
            if path == MESSAGES_PATH:
                self._create_message({k: v[0] for k, v in form.items()})
                return
            if path != f"{NUMBERS_PATH}/{PN_SID}.json":
                self._error(404, 20404, "not found")
                return
            names = {"SmsUrl": "sms_url", "SmsMethod": "sms_method",
                     "VoiceUrl": "voice_url", "VoiceMethod": "voice_method"}
            state.number.update({names[k]: v[0] for k, v in form.items() if k in names})
            self._send(200, state.number)

        def _create_message(self, form: dict[str, str]) -> None:
            sender, to, body = form.get("From", ""), form.get("To", ""), form.get("Body", "")
            callback = form.get("StatusCallback")
            if sender not in state.owned:
                return self._error(400, 21606, f"The From phone number {sender} is not a "
                                   "valid, SMS-capable inbound phone number for your account")
            if not _E164.match(to):
                return self._error(400, 21211, f"The 'To' number {to} is not a valid number")
            if not body:
                return self._error(400, 21602, "Message body is required")
            if len(body) > 1600:
                return self._error(400, 21617, "The concatenated message body exceeds 1600")
            if callback is not None and urlsplit(callback).scheme not in {"http", "https"}:
                return self._error(400, 21609, "Invalid StatusCallback url")
            if state.expected_callback is not None and callback != state.expected_callback:
                return self._error(400, 21609, f"StatusCallback {callback!r} is not the "
                                   f"expected {state.expected_callback!r}")
            with state.lock:
                refused = state.refuse_next.pop(0) if state.refuse_next else None
                final = state.outcomes.pop(0) if state.outcomes else "delivered"
            if refused is not None:
                return self._error(400, refused, "Attempt to send to unsubscribed recipient")
            message = {"sid": "SM" + secrets.token_hex(16), "From": sender, "To": to,
                       "Body": body, "StatusCallback": callback or ""}
            with state.lock:
                state.messages.append(message)
            self._send(201, {"sid": message["sid"], "account_sid": state.account,
                             "from": sender, "to": to, "body": body, "status": "queued",
                             "num_segments": "1", "direction": "outbound-api",
                             "api_version": "2010-04-01"})
            if callback and state.call_back:
                threading.Thread(target=_call_back, args=(state, callback, message, final),
                                 daemon=True).start()
            return None

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Keep the test output quiet."""

    return Handler


class LocalTwilioHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client, sending to the local server instead of api.twilio.com."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        return super().request(method, url.replace("https://api.twilio.com", self.base_url),
                               *args, **kwargs)


@contextmanager
def fake_twilio(**options: Any) -> Iterator[FakeTwilio]:
    """Serve a FakeTwilio on a free port of 127.0.0.1 while the block runs."""
    state = FakeTwilio(number={
        "sid": PN_SID, "account_sid": ACCOUNT, "phone_number": NUMBER,
        "sms_url": "https://demo.twilio.com/welcome/sms/reply", "sms_method": "POST",
        "voice_url": "", "voice_method": "GET",
    }, **options)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
