"""`calfline twilio-setup` against a local HTTP server standing in for api.twilio.com."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response

from responder.channels.twilio_setup import TwilioSetupError, run
from responder.cli import main

ACCOUNT = "AC" + "0" * 32
TOKEN = "test-token"
NUMBER = "+15551234567"
PN_SID = "PN" + "1" * 32
ENV = {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN}
NUMBERS_PATH = f"/2010-04-01/Accounts/{ACCOUNT}/IncomingPhoneNumbers"


@dataclass
class FakeTwilio:
    """What the fake API holds and every request it was sent."""

    number: dict[str, Any]
    requests: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""

    def posts(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST"]


def _handler(state: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _record(self, form: dict[str, list[str]]) -> None:
            url = urlsplit(self.path)
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

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._record({})
            query = parse_qs(urlsplit(self.path).query)
            matches = [state.number] if query.get("PhoneNumber") == [NUMBER] else []
            self._send(200, {"incoming_phone_numbers": matches, "next_page_uri": None,
                             "page": 0, "page_size": 2, "uri": self.path})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            form = parse_qs(self.rfile.read(length).decode())
            self._record(form)
            if urlsplit(self.path).path != f"{NUMBERS_PATH}/{PN_SID}.json":
                self._send(404, {"code": 20404, "message": "not found", "status": 404})
                return
            names = {"SmsUrl": "sms_url", "SmsMethod": "sms_method",
                     "VoiceUrl": "voice_url", "VoiceMethod": "voice_method"}
            state.number.update({names[k]: v[0] for k, v in form.items() if k in names})
            self._send(200, state.number)

        def log_message(self, format: str, *args: Any) -> None:
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


@pytest.fixture
def twilio_api() -> Iterator[FakeTwilio]:
    state = FakeTwilio(number={
        "sid": PN_SID, "account_sid": ACCOUNT, "phone_number": NUMBER,
        "sms_url": "https://demo.twilio.com/welcome/sms/reply", "sms_method": "POST",
        "voice_url": "", "voice_method": "GET",
    })
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def _run(api: FakeTwilio, apply: bool, base: str = "https://calf.example.org/") -> str:
    out = io.StringIO()
    assert run(NUMBER, base, apply, out, ENV, LocalTwilioHttpClient(api.base_url)) == 0
    return out.getvalue()


def test_dry_run_shows_changes_and_posts_nothing(twilio_api: FakeTwilio) -> None:
    text = _run(twilio_api, apply=False)
    assert twilio_api.posts() == []
    (lookup,) = twilio_api.requests
    assert lookup["path"] == f"{NUMBERS_PATH}.json"
    assert lookup["query"]["PhoneNumber"] == [NUMBER]
    assert lookup["auth"] == "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert "https://demo.twilio.com/welcome/sms/reply  ->  https://calf.example.org/sms" in text
    assert "(not set)  ->  https://calf.example.org/voice" in text
    assert "sms_method    POST  (unchanged)" in text
    assert "Dry run" in text and "--apply" in text


def test_apply_posts_the_webhook_fields(twilio_api: FakeTwilio) -> None:
    text = _run(twilio_api, apply=True)
    (update,) = twilio_api.posts()
    assert update["path"] == f"{NUMBERS_PATH}/{PN_SID}.json"
    assert update["form"] == {
        "SmsUrl": "https://calf.example.org/sms", "SmsMethod": "POST",
        "VoiceUrl": "https://calf.example.org/voice", "VoiceMethod": "POST",
    }
    assert "Updated." in text
    # Run again: Twilio now holds our URLs, so there is nothing left to change.
    assert "nothing to do" in _run(twilio_api, apply=True)
    assert len(twilio_api.posts()) == 1


def test_unknown_number_is_an_error(twilio_api: FakeTwilio) -> None:
    client = LocalTwilioHttpClient(twilio_api.base_url)
    with pytest.raises(TwilioSetupError, match=r"\+15559999999 is not a phone number"):
        run("+15559999999", "https://calf.example.org", True, io.StringIO(), ENV, client)
    assert twilio_api.posts() == []


def test_api_error_is_reported(twilio_api: FakeTwilio) -> None:
    twilio_api.number["sid"] = "PN" + "2" * 32  # the update goes to a sid the API does not know
    with pytest.raises(TwilioSetupError, match="Twilio API"):
        _run(twilio_api, apply=True)


@pytest.mark.parametrize(
    ("number", "base", "problem"),
    (("+15551234567", "http://calf.example.org", "--base-url"),
     ("+15551234567", "https://calf.example.org/?x=1", "--base-url"),
     ("5551234567", "https://calf.example.org", "--number"),
     ("+1555abc", "https://calf.example.org", "--number")),
)
def test_bad_arguments_change_nothing(
    twilio_api: FakeTwilio, number: str, base: str, problem: str
) -> None:
    with pytest.raises(TwilioSetupError, match=problem):
        run(number, base, True, io.StringIO(), ENV, LocalTwilioHttpClient(twilio_api.base_url))
    assert twilio_api.requests == []


def test_cli_without_credentials_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["twilio-setup", "--number", NUMBER, "--base-url", "https://x.example"]) == 2
    assert "TWILIO_ACCOUNT_SID" in capsys.readouterr().err
