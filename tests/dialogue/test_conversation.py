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
from responder.nlu.matcher import Thresholds
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


@pytest.mark.parametrize(
    ("text", "template"),
    [("YES", "check_answer_unknown_yes"), ("si", "check_answer_unknown_yes"),
     ("no", "check_answer_unknown_no")],
)
def test_yes_or_no_while_the_store_is_down_says_what_yes_would_mean(
        responder: Responder, text: str, template: str) -> None:
    """The database holds whether a check question is waiting; without it, YES gets the
    urgent advice on condition, not the help text."""
    state = ConversationState(unknown=True)
    turn = respond(responder, text, "sms", None, state, NOW, timedelta(0))
    assert turn.reply.template_id == f"system.{template}.sms"
    assert turn.reply.text  # never silent


def test_a_question_while_the_store_is_down_is_answered_as_always(
        responder: Responder) -> None:
    turn = respond(responder, "calf cramp right now", "sms", None,
                   ConversationState(unknown=True), NOW, timedelta(0))
    assert turn.match.intent == "cramp_now" and turn.reply.template_id == "cramp_now.sms"


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
    """A dev.tsv message that gets the clarifying question (at the configured margin)."""
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


@pytest.fixture(scope="module")
def hesitant(responder: Responder) -> Responder:
    """The same model with a wide ambiguity margin, so close calls ask which was meant."""
    return Responder(responder.catalog, Thresholds(ambiguity=0.6))


def test_clarify_then_answer_over_the_webhook(make_app: Callable[..., Flask],
                                              hesitant: Responder) -> None:
    responder = hesitant
    client = make_app(RESPONDER=responder).test_client()
    text = _ambiguous_message(responder)
    match = responder.matcher.match(text)
    assert "Reply 1 or 2" in _say(client, text)
    store = client.application.extensions["calfline_store"]
    assert store.state("+15554440000", "+1555").clarify == (match.intent, match.runner_up)
    assert _say(client, "2") == _text(responder, match.runner_up or "")
    assert _say(client, "more") == _text(responder, match.runner_up or "", more=True)


CHECKED = ConversationState(check="post_run_tightness", context_at=NOW)


@pytest.fixture(scope="module")
def cautious(responder: Responder) -> Responder:
    """The same model with every message in the check band (by configuration)."""
    return Responder(responder.catalog, Thresholds(urgent=1.01, check=0.0))


def test_a_message_in_the_check_band_asks_the_check_question(cautious: Responder) -> None:
    turn = respond(cautious, "calves tight after my run", "sms", None, ConversationState(), NOW,
                   WINDOW)
    assert turn.reply == render_system(cautious.catalog, "check", "sms")
    assert len(turn.reply.text) <= 160
    assert turn.state.check == turn.match.intent and turn.match.care == "check"


@pytest.mark.parametrize("answer", ["YES", "yes!", "y", "Yeah"])
def test_yes_to_the_check_is_a_red_flag(responder: Responder, answer: str) -> None:
    turn = respond(responder, answer, "sms", None, CHECKED, NOW + timedelta(minutes=2), WINDOW)
    assert (turn.match.intent, turn.match.care) == ("red_flag", "urgent")
    assert turn.reply.urgent
    urgent = render_intent(responder.catalog, "red_flag", "sms", care="urgent")
    assert turn.reply.text == urgent.text
    assert turn.opt_change is None and turn.state.check is None


@pytest.mark.parametrize("answer", ["NO", "no.", "nope", "n"])
def test_no_to_the_check_answers_what_was_asked(responder: Responder, answer: str) -> None:
    turn = respond(responder, answer, "sms", None, CHECKED, NOW + timedelta(minutes=2), WINDOW)
    assert turn.match.intent == "post_run_tightness" and not turn.reply.urgent
    assert turn.reply.text == _text(responder, "post_run_tightness")
    assert turn.state.last_intent == "post_run_tightness" and turn.state.check is None


def test_anything_else_after_the_check_is_a_new_message(responder: Responder) -> None:
    turn = respond(responder, "which shoes are best for tight calves", "sms", None, CHECKED,
                   NOW + timedelta(minutes=2), WINDOW)
    assert turn.match.intent == "shoe_question" and turn.state.check is None


def test_an_unanswered_check_expires(responder: Responder) -> None:
    later = NOW + WINDOW + timedelta(minutes=1)
    turn = respond(responder, "yes", "sms", None, CHECKED, later, WINDOW)
    assert turn.match.intent != "red_flag" and not turn.reply.urgent


def test_stop_after_the_check_still_opts_out(responder: Responder) -> None:
    turn = respond(responder, "STOP", "sms", None, CHECKED, NOW, WINDOW)
    assert turn.opt_change is True and turn.state.opted_out


def test_check_then_yes_over_the_webhook(make_app: Callable[..., Flask],
                                         cautious: Responder, responder: Responder) -> None:
    client = make_app(RESPONDER=cautious).test_client()
    assert _say(client, "my calves feel kind of tight") == render_system(
        cautious.catalog, "check", "sms").text
    store = client.application.extensions["calfline_store"]
    assert store.state("+15554440000", "+1555").check
    urgent = render_intent(cautious.catalog, "red_flag", "sms", care="urgent").text
    assert _say(client, "YES") == urgent
    assert store.state("+15554440000", "+1555").check is None
    assert _say(client, "more") == _text(responder, "red_flag", more=True)


def test_check_then_no_over_the_webhook(make_app: Callable[..., Flask],
                                        cautious: Responder) -> None:
    client = make_app(RESPONDER=cautious).test_client()
    _say(client, "my calves feel kind of tight")
    pending = client.application.extensions["calfline_store"].state("+15554440000", "+1555").check
    assert pending and _say(client, "no") == _text(cautious, pending)
