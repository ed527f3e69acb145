"""`calfline twilio-setup` against the local stand-in for api.twilio.com (tests/twilio_api.py)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import pytest

from responder.channels.twilio_setup import TwilioSetupError, run
from responder.cli import main
from tests.twilio_api import (
    ACCOUNT,
    NUMBER,
    NUMBERS_PATH,
    PN_SID,
    TOKEN,
    FakeTwilio,
    LocalTwilioHttpClient,
    fake_twilio,
)

ENV = {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN}


@pytest.fixture
def twilio_api() -> Iterator[FakeTwilio]:
    with fake_twilio() as state:
        yield state


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
