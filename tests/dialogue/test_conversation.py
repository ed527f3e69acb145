"""Context: "1"/"2" answer a clarifying question, "more" extends, "yes" keeps urgent advice."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from responder.dialogue.conversation import ConversationState, respond
from responder.dialogue.replies import render_intent, render_system
from responder.dialogue.respond import Responder
from tests.conftest import DATA

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=30)
CLARIFY = ConversationState(clarify=("cramp_now", "post_run_tightness"), context_at=NOW)


def _text(responder: Responder, intent: str, more: bool = False) -> str:
    return render_intent(responder.catalog, intent, "sms", None, more=more).text


@pytest.mark.parametrize(("answer", "intent"), [("1", "cramp_now"), ("2", "post_run_tightness"),
                                                ("2.", "post_run_tightness"), ("one", "cramp_now")])
def test_a_number_answers_the_clarifying_question(responder: Responder, answer: str,
                                                  intent: str) -> None:
    turn = respond(responder, answer, "sms", None, CLARIFY, NOW + timedelta(minutes=1), WINDOW)
    assert turn.reply.text == _text(responder, intent)
    assert turn.state.last_intent == intent and turn.state.clarify is None


def test_an_expired_question_is_forgotten(responder: Responder) -> None:
    later = NOW + timedelta(minutes=31)
    turn = respond(responder, "1", "sms", None, CLARIFY, later, WINDOW)
    assert turn.reply.text != _text(responder, "cramp_now")
    assert turn.match.intent == turn.state.last_intent


def test_more_gives_the_longer_template_of_the_last_intent(responder: Responder) -> None:
    state = ConversationState(last_intent="hydration", context_at=NOW)
    turn = respond(responder, "MORE", "sms", None, state, NOW, WINDOW)
    assert turn.reply.text == _text(responder, "hydration", more=True)
    assert turn.reply.template_id == "hydration.sms_more"


def test_more_without_context(responder: Responder) -> None:
    turn = respond(responder, "more", "sms", None, ConversationState(), NOW, WINDOW)
    assert turn.reply == render_system(responder.catalog, "more_unavailable", "sms")


def test_yes_after_a_red_flag_keeps_the_urgent_answer(responder: Responder) -> None:
    state = ConversationState(last_intent="red_flag", context_at=NOW)
    turn = respond(responder, "yes", "sms", None, state, NOW, WINDOW)
    assert turn.reply.urgent and turn.reply.text == _text(responder, "red_flag")
    assert turn.opt_change is None and not turn.state.opted_out


def test_yes_out_of_context_explains_the_line(responder: Responder) -> None:
    turn = respond(responder, "yes", "sms", None, ConversationState(), NOW, WINDOW)
    assert turn.reply.text == _text(responder, "help") and turn.opt_change is None


def test_a_red_flag_wins_over_a_pending_question(responder: Responder) -> None:
    turn = respond(responder, "1 and now my calf is swollen and hot", "sms", None, CLARIFY, NOW,
                   WINDOW)
    assert turn.reply.urgent and turn.state.last_intent == "red_flag"


def _ambiguous_message(responder: Responder) -> str:
    candidates = ["my calf"] + [line.split("\t", 2)[2] for line in
                                (DATA / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    for text in candidates:
        match = responder.matcher.match(text)
        if match.ambiguous and match.runner_up:
            return text
    raise AssertionError("no message in dev.tsv gets a clarifying question any more")


def _say(client: FlaskClient, body: str) -> str:
    response = client.post("/sms", data={"From": "+15554440000", "To": "+1555", "Body": body})
    (message,) = ET.fromstring(response.data).findall("Message")
    return message.text or ""


def test_clarify_then_answer_over_the_webhook(make_app: Callable[..., Flask],
                                              responder: Responder) -> None:
    client = make_app().test_client()
    text = _ambiguous_message(responder)
    match = responder.matcher.match(text)
    assert "Reply 1 or 2" in _say(client, text)
    store = client.application.extensions["calfline_store"]
    assert store.state("+15554440000", "+1555").clarify == (match.intent, match.runner_up)
    assert _say(client, "2") == _text(responder, match.runner_up or "")
    assert _say(client, "more") == _text(responder, match.runner_up or "", more=True)
