"""Rate limits: 429 to a flooding sender or IP, never to a normal conversation."""

from __future__ import annotations

import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from responder.errors import ConfigError
from tests.twilio_signing import TOKEN, count_messages, signed_post

REDIS = "redis://127.0.0.1:6379/0"


def _send(client: FlaskClient, sender: str, remote: str = "127.0.0.1") -> int:
    response = client.post("/sms", data={"From": sender, "To": "+1555", "Body": "calf cramp"},
                           environ_base={"REMOTE_ADDR": remote})
    return response.status_code


def test_a_normal_conversation_is_never_limited(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()  # the default limits
    assert [_send(client, "+15557770000") for _ in range(25)] == [200] * 25


@pytest.mark.parametrize("storage", ["memory://", REDIS])
def test_a_flooding_sender_gets_429(make_app: Callable[..., Flask], storage: str) -> None:
    client = make_app(RATELIMIT_PER_SENDER="3/minute", RATELIMIT_STORAGE_URI=storage,
                      RATELIMIT_KEY_PREFIX=secrets.token_hex(4)).test_client()
    assert [_send(client, "+15557770000") for _ in range(4)] == [200, 200, 200, 429]
    response = client.post("/sms", data={"From": "+15557770000", "Body": "x"})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    assert _send(client, "+15557771111") == 200  # someone else is unaffected
    assert count_messages(client) == 8  # the refused messages were not stored


def _signed(client: FlaskClient, sender: str, body: str = "calf cramp", sid: str | None = None,
            remote: str = "127.0.0.2") -> int:
    form = {"From": sender, "To": "+1555", "Body": body,
            "MessageSid": sid or "SM" + secrets.token_hex(16)}
    client.environ_base["REMOTE_ADDR"] = remote
    return signed_post(client, form).status_code


def _forged(client: FlaskClient, remote: str = "127.0.0.2") -> int:
    form = {"From": "+15558880000", "To": "+1555", "Body": "calf cramp"}
    return client.post("/sms", data=form, headers={"X-Twilio-Signature": "forged"},
                       environ_base={"REMOTE_ADDR": remote}).status_code


def test_only_forged_requests_count_against_an_ip(make_app: Callable[..., Flask]) -> None:
    client = make_app(TWILIO_AUTH_TOKEN=TOKEN, RATELIMIT_PER_IP="5/minute").test_client()
    assert [_forged(client) for _ in range(6)] == [403] * 5 + [429]
    # Twilio's own requests come from the same few addresses: never refused by the IP limit.
    assert [_signed(client, f"+1555888{n:04d}") for n in range(12)] == [200] * 12
    assert _forged(client, "127.0.0.3") == 403  # another address has its own allowance


def test_genuine_traffic_past_the_ip_limit_is_answered(make_app: Callable[..., Flask]) -> None:
    client = make_app(TWILIO_AUTH_TOKEN=TOKEN, RATELIMIT_PER_IP="3/minute").test_client()
    statuses = [_signed(client, f"+1555777{n:04d}") for n in range(10)]  # a race-day spike
    assert statuses == [200] * 10
    assert count_messages(client) == 20


@pytest.mark.parametrize("storage", ["memory://", REDIS])
def test_a_resent_copy_is_answered_and_not_counted(make_app: Callable[..., Flask],
                                                   storage: str) -> None:
    client = make_app(TWILIO_AUTH_TOKEN=TOKEN, RATELIMIT_PER_SENDER="3/minute",
                      RATELIMIT_STORAGE_URI=storage,
                      RATELIMIT_KEY_PREFIX=secrets.token_hex(4)).test_client()
    sender, sid = "+15556660000", "SM" + "c" * 32
    assert _signed(client, sender, sid=sid) == 200
    assert [_signed(client, sender, sid=sid) for _ in range(5)] == [200] * 5  # Twilio re-sends
    assert [_signed(client, sender) for _ in range(3)] == [200, 200, 429]
    assert _signed(client, sender, sid=sid) == 200  # a copy is answered even past the limit
    assert count_messages(client) == 6  # one record per MessageSid


def test_a_red_flag_past_the_sender_limit_gets_the_urgent_reply(
    make_app: Callable[..., Flask]
) -> None:
    client = make_app(TWILIO_AUTH_TOKEN=TOKEN, RATELIMIT_PER_SENDER="2/minute").test_client()
    sender = "+15556661111"
    assert [_signed(client, sender) for _ in range(3)] == [200, 200, 429]
    form = {"From": sender, "To": "+1555", "MessageSid": "SM" + "d" * 32,
            "Body": "my calf is swollen hot and red and i cant walk"}
    response = signed_post(client, form)
    assert response.status_code == 200
    (message,) = ET.fromstring(response.data).findall("Message")
    assert "urgent" in (message.text or "").lower() or "911" in (message.text or "")
    assert _signed(client, sender, body="what shoes should i buy") == 429


def test_failed_logins_and_bad_api_keys_count_against_the_ip(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    from tests.frontdesk.conftest import STAFF, write_clinics_file

    clinics = write_clinics_file(tmp_path / "clinics.yaml", "http://127.0.0.1:9/hook")
    client = make_app(CLINICS_FILE=str(clinics), RATELIMIT_PER_IP="3/minute",
                      TWILIO_AUTH_TOKEN=TOKEN).test_client()
    page = client.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token is not None
    username, password = STAFF["riverside"]

    def login(secret: str) -> int:
        return client.post("/console/login", data={
            "csrf_token": token.group(1), "username": username, "password": secret}).status_code

    def api(key: str) -> int:
        return client.post("/api/v1/replies", json={"text": "calf cramp"},
                           headers={"Authorization": f"Bearer {key}"}).status_code

    assert [login("wrong-password-1"), api("cl_wrong"), login("wrong-password-2")] == [401] * 3
    refused = client.post("/api/v1/replies", json={"text": "calf cramp"},
                          headers={"Authorization": "Bearer cl_wrong"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.get_json()["error"]["code"] == "too_many_requests"
    assert login(password) == 429  # even the right password waits: the address is flooding
    # Signed webhooks from the same address are not part of that count.
    assert _signed(client, "+15556662222", remote="127.0.0.1") == 200


def test_redis_counts_are_shared_between_workers(make_app: Callable[..., Flask]) -> None:
    prefix = secrets.token_hex(4)
    settings = {"RATELIMIT_PER_SENDER": "3/minute", "RATELIMIT_STORAGE_URI": REDIS,
                "RATELIMIT_KEY_PREFIX": prefix}
    one, two = make_app(**settings).test_client(), make_app(**settings).test_client()
    assert [_send(one, "+15559990000") for _ in range(3)] == [200] * 3
    assert _send(two, "+15559990000") == 429  # a second worker sees the same counter


def test_forged_requests_do_not_use_up_a_senders_allowance(
    make_app: Callable[..., Flask]
) -> None:
    client = make_app(TWILIO_AUTH_TOKEN=TOKEN, RATELIMIT_PER_SENDER="3/minute").test_client()
    victim = {"From": "+15551112222", "To": "+1555", "Body": "calf cramp"}
    assert [client.post("/sms", data=victim).status_code for _ in range(10)] == [403] * 10
    assert signed_post(client, victim).status_code == 200


def test_unreadable_limit_stops_start_up(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError, match="CALFLINE_RATELIMIT_PER_SENDER"):
        make_app(RATELIMIT_PER_SENDER="lots")
