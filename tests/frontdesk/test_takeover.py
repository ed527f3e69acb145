"""Staff take a conversation over, on SQLite and PostgreSQL: the line goes silent but for
red flags, staff replies go out through Twilio's REST API (the local stand-in checks
them as Twilio would) and are stored marked with the staff member; hand-back by
the button or by itself."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from responder.errors import ConfigError
from responder.frontdesk import takeover
from responder.frontdesk.clinics import Clinic
from tests.frontdesk.conftest import HILLTOP_NUMBER, RIVERSIDE_NUMBER, STATUS_URL
from tests.frontdesk.workflow_helpers import conversation, messages, statuses, text_in
from tests.twilio_api import FakeTwilio

PATIENT = "+15557770303"


def _clinic(app: Flask, clinic_id: str = "riverside") -> Clinic:
    clinic: Clinic = app.extensions["calfline_clinics"].clinics[clinic_id]
    return clinic


def _start(app: Flask) -> int:
    text_in(app, "calves tight after my long run", "SM" + "1" * 32, PATIENT, RIVERSIDE_NUMBER)
    (reply,) = [m for m in messages(app, 1) if m.direction == "out"]
    return reply.conversation_id


@pytest.fixture
def app(make_app: Callable[..., Flask], workflow_config: dict[str, Any]) -> Flask:
    return make_app(**workflow_config)


def test_taken_over_the_line_is_silent_but_for_red_flags(app: Flask) -> None:
    conversation_id = _start(app)
    assert not takeover.take_over(app, _clinic(app, "hilltop"), conversation_id, "hilltop")
    assert takeover.take_over(app, _clinic(app), conversation_id, "frontdesk")
    held = conversation(app, conversation_id)
    assert held.held_by == "frontdesk" and held.held_number is None  # no open item to take it from
    assert text_in(app, "which shoes are best for tight calves", "SM" + "2" * 32, PATIENT,
                   RIVERSIDE_NUMBER) is None  # empty TwiML: staff answer this one
    assert conversation(app, conversation_id).held_number == PATIENT  # so staff can reply
    urgent = text_in(app, "now my calf is swollen hot and red", "SM" + "3" * 32, PATIENT,
                     RIVERSIDE_NUMBER)
    assert urgent and "urgent" in urgent.lower()  # safety never waits
    other = text_in(app, "which shoes are best for tight calves", "SM" + "4" * 32,
                    "+15557770404", RIVERSIDE_NUMBER)
    assert other  # another patient's conversation is not taken over
    assert takeover.hand_back(app, _clinic(app), conversation_id, "frontdesk")
    assert conversation(app, conversation_id).held_number is None
    assert text_in(app, "which shoes are best for tight calves", "SM" + "5" * 32, PATIENT,
                   RIVERSIDE_NUMBER)


def test_staff_reply_goes_out_from_the_clinics_number(app: Flask, twilio: FakeTwilio) -> None:
    conversation_id = _start(app)
    clinic = _clinic(app)
    with pytest.raises(takeover.TakeoverError, match="Take the conversation over"):
        takeover.staff_reply(app, clinic, conversation_id, "frontdesk", "Hello")
    takeover.take_over(app, clinic, conversation_id, "frontdesk")
    with pytest.raises(takeover.TakeoverError, match="number is not known yet"):
        takeover.staff_reply(app, clinic, conversation_id, "frontdesk", "Hello")
    text_in(app, "ok thanks", "SM" + "6" * 32, PATIENT, RIVERSIDE_NUMBER)
    assert takeover.staff_reply(app, _clinic(app, "hilltop"), conversation_id, "hilltop",
                                "Hi") is None  # another clinic's conversation
    message_id = takeover.staff_reply(app, clinic, conversation_id, "frontdesk",
                                      "Hi, this is Sam at Riverside. Can you come in at 3?")
    (sent,) = twilio.messages
    assert (sent["From"], sent["To"]) == (RIVERSIDE_NUMBER, PATIENT)
    assert sent["Body"] == "Hi, this is Sam at Riverside. Can you come in at 3?"
    assert sent["StatusCallback"] == STATUS_URL
    (request,) = [r for r in twilio.posts() if r["path"].endswith("/Messages.json")]
    account_auth = base64.b64encode(f"{twilio.account}:{twilio.token}".encode()).decode()
    assert request["auth"] == f"Basic {account_auth}"
    (stored,) = [m for m in messages(app, conversation_id) if m.id == message_id]
    assert stored.staff_user == "frontdesk" and stored.direction == "out"
    assert stored.twilio_sid == sent["sid"] and stored.body == sent["Body"]
    assert statuses(app, sent["sid"]) == ["queued"]  # Twilio calls back from "sent" on
    assert conversation(app, conversation_id).held_reply_at is not None


def test_twilio_refusal_is_shown_and_nothing_is_stored(app: Flask, twilio: FakeTwilio) -> None:
    conversation_id = _start(app)
    clinic = _clinic(app)
    takeover.take_over(app, clinic, conversation_id, "frontdesk")
    text_in(app, "hello?", "SM" + "7" * 32, PATIENT, RIVERSIDE_NUMBER)
    before = len(messages(app, conversation_id))
    twilio.refuse_next.append(21610)
    with pytest.raises(takeover.TakeoverError, match="21610"):
        takeover.staff_reply(app, clinic, conversation_id, "frontdesk", "Are you there?")
    assert len(messages(app, conversation_id)) == before


def test_a_takeover_hands_back_by_itself(make_app: Callable[..., Flask],
                                         workflow_config: dict[str, Any]) -> None:
    app = make_app(**workflow_config, TAKEOVER_MINUTES=0.02)  # 1.2 seconds
    conversation_id = _start(app)
    takeover.take_over(app, _clinic(app), conversation_id, "frontdesk")
    assert text_in(app, "which shoes for tight calves", "SM" + "8" * 32, PATIENT,
                   RIVERSIDE_NUMBER) is None
    time.sleep(1.5)
    # The webhook already answers again; the sweep then forgets who had it and the number.
    assert text_in(app, "which shoes for tight calves", "SM" + "9" * 32, PATIENT,
                   RIVERSIDE_NUMBER)
    assert takeover.hand_back_expired(app) == 1
    row = conversation(app, conversation_id)
    assert row.held_by is None and row.held_number is None


def test_a_takeover_survives_a_restart(make_app: Callable[..., Flask],
                                       workflow_config: dict[str, Any]) -> None:
    app = make_app(**workflow_config)
    conversation_id = _start(app)
    takeover.take_over(app, _clinic(app), conversation_id, "frontdesk")
    app.extensions["calfline_store"].close()
    again = make_app(**workflow_config)
    assert text_in(again, "which shoes for tight calves", "SM" + "a" * 32, PATIENT,
                   RIVERSIDE_NUMBER) is None
    held = takeover.takeover_of(again, _clinic(again), conversation_id)
    assert held is not None and held.held_by == "frontdesk" and held.has_number


def test_takeover_needs_the_clinics_own_conversation(app: Flask) -> None:
    text_in(app, "calf cramp right now", "SM" + "b" * 32, PATIENT, HILLTOP_NUMBER)
    assert not takeover.take_over(app, _clinic(app), 1, "frontdesk")
    assert not takeover.take_over(app, _clinic(app), 2**40, "frontdesk")
    assert not takeover.hand_back(app, _clinic(app), 1, "frontdesk")


@pytest.mark.parametrize("name", ["TAKEOVER_MINUTES", "ACK_MINUTES"])
def test_time_limits_must_be_positive(make_app: Callable[..., Flask], name: str) -> None:
    with pytest.raises(ConfigError, match=f"CALFLINE_{name}"):
        make_app(**{name: 0.0})
