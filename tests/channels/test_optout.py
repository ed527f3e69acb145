"""Carrier opt-out: STOP silences the line for that number until START, across restarts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

SENDER, LINE = "+15552220000", "+15550001000"


def _texts(client: FlaskClient, body: str, sender: str = SENDER, to: str = LINE) -> list[str]:
    response = client.post("/sms", data={"From": sender, "To": to, "Body": body})
    assert response.status_code == 200
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    return [m.text or "" for m in root.findall("Message")]


def test_stop_then_message_then_start(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    assert len(_texts(client, "calf cramp right now")) == 1
    assert _texts(client, "STOP") == []
    assert _texts(client, "calf cramp right now") == []
    assert _texts(client, "help") == []  # nothing at all until they opt back in
    (welcome,) = _texts(client, "START")
    assert "subscribed" in welcome.lower()
    assert len(_texts(client, "calf cramp right now")) == 1
    store = client.application.extensions["calfline_store"]
    assert not store.state(SENDER, LINE).opted_out


@pytest.mark.parametrize("word", ["stop", "STOPALL", " Unsubscribe ", "cancel", "END", "quit",
                                  "revoke", "optout", "Stop."])
def test_every_carrier_word_opts_out(make_app: Callable[..., Flask], word: str) -> None:
    client = make_app().test_client()
    assert _texts(client, word) == []
    assert client.application.extensions["calfline_store"].state(SENDER, LINE).opted_out


def test_stop_inside_a_sentence_is_not_an_opt_out(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    assert len(_texts(client, "how do i stop my calf cramping")) == 1
    assert not client.application.extensions["calfline_store"].state(SENDER, LINE).opted_out


@pytest.mark.parametrize("word", ["UNSTOP", "yes", "Yes!"])
def test_unstop_and_yes_opt_back_in(make_app: Callable[..., Flask], word: str) -> None:
    client = make_app().test_client()
    _texts(client, "STOP")
    (welcome,) = _texts(client, word)
    assert "subscribed" in welcome.lower()
    assert len(_texts(client, "calf cramp right now")) == 1


def test_opt_out_survives_a_restart(make_app: Callable[..., Flask]) -> None:
    first = make_app().test_client()
    assert _texts(first, "STOP") == []
    first.application.extensions["calfline_store"].close()
    second = make_app().test_client()  # a new process would see exactly this database
    assert _texts(second, "my calves are tight after my run") == []
    assert len(_texts(second, "START")) == 1
    third = make_app().test_client()
    assert len(_texts(third, "my calves are tight after my run")) == 1


def test_opt_out_is_per_sender_and_number(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    _texts(client, "STOP")
    assert len(_texts(client, "calf cramp", sender="+15553330000")) == 1
    # Twilio keeps opt-outs per sender and number (or Messaging Service), and so do we.
    assert len(_texts(client, "calf cramp", to="+15550002000")) == 1


def test_help_gets_the_help_template(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    (text,) = _texts(client, "HELP")
    catalog = client.application.extensions["calfline"].catalog
    first_words = catalog.intents["help"].replies["sms"].split("{clinic_name}")[1][:30]
    assert first_words in text
