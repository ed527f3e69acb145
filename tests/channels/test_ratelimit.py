"""Rate limits: 429 to a flooding sender or IP, never to a normal conversation."""

from __future__ import annotations

import secrets
from collections.abc import Callable

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


def test_a_flooding_ip_gets_429(make_app: Callable[..., Flask]) -> None:
    client = make_app(RATELIMIT_PER_IP="5/minute").test_client()
    statuses = [_send(client, f"+1555888000{n}", "127.0.0.2") for n in range(6)]
    assert statuses == [200] * 5 + [429]
    assert _send(client, "+15558880009", "127.0.0.3") == 200


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
