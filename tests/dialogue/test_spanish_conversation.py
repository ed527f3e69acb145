"""A conversation keeps its language; ESPAÑOL / ENGLISH switch it; commands and the
check question work in Spanish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from responder.dialogue.conversation import ConversationState, Turn, respond
from responder.dialogue.replies import render_intent, render_system
from responder.dialogue.respond import Responder
from responder.nlu.matcher import Thresholds

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=30)


def _talk(responder: Responder, messages: list[str],
          state: ConversationState | None = None,
          variables: dict[str, str] | None = None) -> list[Turn]:
    turns, state = [], state or ConversationState()
    for minute, text in enumerate(messages):
        turn = respond(responder, text, "sms", variables, state, NOW + timedelta(minutes=minute),
                       WINDOW)
        turns.append(turn)
        state = turn.state
    return turns


def _spanish(responder: Responder, intent: str, more: bool = False) -> str:
    return render_intent(responder.catalog.localized("es"), intent, "sms", None, more=more).text


def test_a_spanish_conversation_stays_spanish(responder: Responder) -> None:
    turns = _talk(responder, [
        "oye tengo la pantorrilla bien tensa despues de correr 15 km ayer",
        "MAS",
        "ok",
        "gracias",
    ])
    assert [t.state.language for t in turns] == ["es"] * 4
    assert turns[0].reply.text == _spanish(responder, "post_run_tightness")
    assert turns[1].reply.text == _spanish(responder, "post_run_tightness", more=True)
    assert all(t.reply.language == "es" for t in turns)


def test_english_and_espanol_switch_the_conversation(responder: Responder) -> None:
    turns = _talk(responder, [
        "tengo calambres en el chamorro",
        "ENGLISH",
        "si",
        "ESPAÑOL",
    ])
    assert [t.state.language for t in turns] == ["es", "en", "en", "es"]
    english, spanish = responder.catalog, responder.catalog.localized("es")
    assert turns[1].reply == render_system(english, "language_set", "sms")
    assert turns[3].reply == render_system(spanish, "language_set", "sms")
    # A one-word Spanish reply does not switch an English conversation back.
    assert turns[2].reply.language == "en"


def test_a_long_message_in_the_other_language_switches(responder: Responder) -> None:
    turns = _talk(responder, ["my calves feel tight after my long run",
                              "perdon mejor en espanol, me duelen las pantorrillas al correr"])
    assert [t.state.language for t in turns] == ["en", "es"]


def test_the_clinic_default_answers_what_says_too_little(responder: Responder) -> None:
    (turn,) = _talk(responder, ["ok"], variables={"languages": "es,en"})
    assert turn.state.language == "es" and turn.reply.language == "es"
    (turn,) = _talk(responder, ["ok"], variables={"languages": "en,es"})
    assert turn.state.language == "en"


@pytest.mark.parametrize("word", ["PARAR", "cancelar", "Detener.", " BAJA "])
def test_spanish_stop_words_opt_out_and_comenzar_opts_back_in(responder: Responder,
                                                             word: str) -> None:
    stop, quiet, back = _talk(responder, [word, "tengo un calambre", "COMENZAR"])
    assert stop.match.intent == "opt_out" and stop.opt_change is True
    assert quiet.reply.text == "" and quiet.state.opted_out
    assert back.match.intent == "opt_in" and back.opt_change is False
    assert back.reply.language == "es" and back.reply.text


def test_english_stop_works_in_a_spanish_conversation(responder: Responder) -> None:
    _, stop = _talk(responder, ["hola buenas tardes", "STOP"])
    assert stop.match.intent == "opt_out" and stop.state.opted_out


@pytest.fixture(scope="module")
def cautious(responder: Responder) -> Responder:
    """The same model with every message in the check band (by configuration)."""
    return Responder(responder.catalog, Thresholds(urgent=1.01, check=0.0))


@pytest.mark.parametrize(("answer", "urgent"), [("sí", True), ("si", True), ("No", False),
                                                ("ninguno", False)])
def test_the_check_question_in_spanish(cautious: Responder, answer: str, urgent: bool) -> None:
    asked, answered = _talk(cautious, ["me duele la pantorrilla desde ayer", answer])
    spanish = cautious.catalog.localized("es")
    assert asked.match.care == "check"
    assert asked.reply == render_system(spanish, "check", "sms")
    assert answered.reply.language == "es"
    if urgent:
        assert answered.match.intent == "red_flag" and answered.match.care == "urgent"
        assert answered.reply == render_intent(spanish, "red_flag", "sms", care="urgent")
    else:
        assert answered.match.intent == asked.match.intent
        assert answered.reply == render_intent(spanish, asked.match.intent, "sms")


def test_a_conversation_from_before_languages_stays_english(responder: Responder) -> None:
    """Stored context without a language was answered in English: a 'no' stays English."""
    state = ConversationState(check="post_run_tightness", context_at=NOW)
    (turn,) = _talk(responder, ["no"], state=state)
    assert turn.reply.language == "en" and turn.match.intent == "post_run_tightness"
