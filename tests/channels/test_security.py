"""Only requests Twilio signed are answered or stored; proxies and tunnels are handled."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from flask import Flask, request
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from responder.channels.signatures import form_signature, signed_url
from responder.errors import ConfigError
from tests.twilio_signing import TOKEN, count_messages, sign, signed_post

FORM = {"From": "+15551230001", "To": "+15550009999", "Body": "calf cramping bad",
        "MessageSid": "SM" + "a" * 32}


def _reply(body: bytes) -> list[str]:
    root = ET.fromstring(body)
    assert root.tag == "Response"
    return [m.text or "" for m in root.findall("Message")]


def test_signed_request_is_answered_and_stored(make_app: Callable[..., Flask]) -> None:
    client = make_app(TWILIO_AUTH_TOKEN=TOKEN).test_client()
    response = signed_post(client, FORM)
    assert response.status_code == 200
    assert len(_reply(response.data)) == 1
    assert count_messages(client) == 2  # the message and its reply


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing X-Twilio-Signature"),
        ({"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}, "does not match"),
        ({"X-Twilio-Signature": sign("http://localhost/sms", FORM, "another-token")},
         "does not match"),
        ({"X-Twilio-Signature": sign("http://localhost/sms", {**FORM, "Body": "hi"})},
         "does not match"),
    ],
)
def test_unsigned_or_badly_signed_is_refused_and_not_stored(
    make_app: Callable[..., Flask], headers: dict[str, str], reason: str
) -> None:
    client = make_app(TWILIO_AUTH_TOKEN=TOKEN).test_client()
    response = client.post("/sms", data=FORM, headers=headers)
    assert response.status_code == 403
    assert reason in response.get_data(as_text=True)
    assert b"<Message>" not in response.data
    assert count_messages(client) == 0


def test_without_token_loopback_is_answered(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()  # the test client's REMOTE_ADDR is 127.0.0.1
    response = client.post("/sms", data=FORM)
    assert response.status_code == 200
    assert count_messages(client) == 2


@pytest.mark.parametrize(
    ("remote", "headers"),
    [
        ("203.0.113.7", {}),
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.7"}),  # a tunnel (ngrok) or proxy
        ("::1", {"Forwarded": "for=203.0.113.7"}),
    ],
)
def test_without_token_anything_but_direct_loopback_is_refused(
    make_app: Callable[..., Flask], remote: str, headers: dict[str, str]
) -> None:
    client = make_app().test_client()
    response = client.post("/sms", data=FORM, headers=headers,
                           environ_base={"REMOTE_ADDR": remote})
    assert response.status_code == 403
    assert "TWILIO_AUTH_TOKEN" in response.get_data(as_text=True)
    assert count_messages(client) == 0


def test_without_token_start_up_warns(make_app: Callable[..., Flask],
                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="calfline.security"):
        make_app()
    assert any("TWILIO_AUTH_TOKEN is not set" in r.getMessage() for r in caplog.records)


def test_a_configured_token_does_not_trust_loopback(make_app: Callable[..., Flask]) -> None:
    client = make_app(TWILIO_AUTH_TOKEN=TOKEN).test_client()
    assert client.post("/sms", data=FORM).status_code == 403


PUBLIC = "https://calfline.example.org/sms"
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "calfline.example.org",
             "X-Forwarded-For": "54.172.60.1"}


def test_behind_a_proxy_without_trust_the_signature_fails(
    make_app: Callable[..., Flask]
) -> None:
    client = make_app(TWILIO_AUTH_TOKEN=TOKEN).test_client()
    response = signed_post(client, FORM, url=PUBLIC, headers=FORWARDED)
    assert response.status_code == 403
    assert count_messages(client) == 0


def test_trusted_proxy_headers_rebuild_the_signed_url(make_app: Callable[..., Flask]) -> None:
    client = make_app(TWILIO_AUTH_TOKEN=TOKEN, TRUST_PROXY=1).test_client()
    response = signed_post(client, FORM, url=PUBLIC, headers=FORWARDED)
    assert response.status_code == 200
    assert count_messages(client) == 2


def test_public_base_url_rebuilds_the_signed_url(make_app: Callable[..., Flask]) -> None:
    client = make_app(TWILIO_AUTH_TOKEN=TOKEN,
                      PUBLIC_BASE_URL="https://calfline.example.org/").test_client()
    assert signed_post(client, FORM, url=PUBLIC).status_code == 200
    # ... and the query string Twilio was configured with is part of what it signs.
    url = PUBLIC + "?clinic=north"
    response = client.post("/sms?clinic=north", data=FORM,
                           headers={"X-Twilio-Signature": sign(url, FORM)})
    assert response.status_code == 200
    assert signed_post(client, FORM).status_code == 403  # the local URL is not what Twilio signs


def test_multi_valued_fields_are_signed_like_twilio(make_app: Callable[..., Flask]) -> None:
    client = make_app(TWILIO_AUTH_TOKEN=TOKEN).test_client()
    data = [("From", "+15551230001"), ("Body", "calf cramp"), ("MediaUrl0", "a"),
            ("MediaUrl0", "b")]
    # Twilio's algorithm: sorted names, each value of a name appended in order.
    payload = "http://localhost/sms" + "Bodycalf cramp" + "From+15551230001" + "MediaUrl0a"
    payload += "MediaUrl0b"
    signature = base64.b64encode(hmac.new(TOKEN.encode(), payload.encode(),
                                          hashlib.sha1).digest()).decode()
    response = client.post("/sms", data=MultiDict(data),
                           headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Body", "From", "To", "MediaUrl0", "a", "A", ""]),
                          st.text(max_size=8)), max_size=8),
       st.sampled_from(["http://localhost/sms", "https://calfline.example.org/sms?x=1", ""]))
def test_our_signature_is_twilios(fields: list[tuple[str, str]], url: str) -> None:
    """form_signature gives RequestValidator.compute_signature's answer: repeated and
    unsorted fields, repeated pairs, empty names and values, non-ASCII text."""
    form = MultiDict(fields)
    assert form_signature(TOKEN, url, form) == RequestValidator(TOKEN).compute_signature(
        url, form)


def test_the_signed_url_is_werkzeugs(make_app: Callable[..., Flask]) -> None:
    """The URL kept per scheme, host and path is request.url, on every request."""
    app = make_app(TWILIO_AUTH_TOKEN=TOKEN)
    for base, path in [("http://localhost", "/sms"), ("http://LocalHost:80", "/sms"),
                       ("https://xn--n3h.net:8443", "/s%C3%A5ms"), ("http://a.b", "/sms?q=1"),
                       ("http://localhost", "/sms")]:
        with app.test_request_context(path, base_url=base, method="POST"):
            assert signed_url() == request.url


@pytest.mark.parametrize(
    ("setting", "value"),
    [("TRUST_PROXY", -1), ("PUBLIC_BASE_URL", "calfline.example.org")],
)
def test_unusable_proxy_settings_stop_start_up(
    make_app: Callable[..., Flask], setting: str, value: object
) -> None:
    with pytest.raises(ConfigError):
        make_app(**{setting: value})
