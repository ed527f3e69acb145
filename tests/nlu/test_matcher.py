"""Matcher rules: exact commands, care levels, thresholds, the check band, ambiguity."""

import pytest

from responder.dialogue.respond import Responder
from responder.nlu.catalog import load_catalog
from responder.nlu.matcher import Matcher, Thresholds
from tests.conftest import INTENTS


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("STOP", "opt_out"), (" stop. ", "opt_out"), ("Unsubscribe", "opt_out"),
        ("OPTOUT", "opt_out"), ("start", "opt_in"), ("UNSTOP", "opt_in"), ("Yes", "opt_in"),
        ("HELP", "help"), ("info?", "help"),
    ],
)
def test_command_words_are_exact(responder: Responder, text: str, intent: str) -> None:
    match = responder.matcher.match(text)
    assert (match.intent, match.confidence, match.reason) == (intent, 1.0, "command")


@pytest.mark.parametrize(
    "text",
    ["I can't stop cramping", "stop please", "how do i stop my calves getting tight",
     "stopp", "the cramps wont end", "quit running?"],
)
def test_command_words_inside_sentences_are_not_opt_out(responder: Responder, text: str) -> None:
    assert responder.matcher.match(text).intent not in {"opt_out", "opt_in"}


def test_help_inside_a_question_is_not_the_help_command(responder: Responder) -> None:
    assert responder.matcher.match("help my calf is cramping").intent == "cramp_now"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("my knee hurts", "out_of_scope"),
        ("what's the weather tomorrow", "out_of_scope"),
        ("asdfghjkl", "out_of_scope"),
        ("", "out_of_scope"),
        ("hey there", "greeting"),
        ("hi my calves are tight after running", "post_run_tightness"),
        ("thanks that helped", "thanks"),
        ("could my new shoes be making my calves tight", "shoe_question"),
        ("should i drink electrolytes to stop cramps", "hydration"),
        ("can i take advil for sore calves", "medication"),
        ("calves tight for 2 months even on rest days", "chronic_pain"),
        ("how do i stop my calves getting tight", "prevention"),
    ],
)
def test_contract_examples(responder: Responder, text: str, intent: str) -> None:
    assert responder.matcher.match(text).intent == intent


def test_confidence_and_runner_up(responder: Responder) -> None:
    match = responder.matcher.match("calf cramping mid run what do i do")
    assert match.intent == "cramp_now"
    assert 0.0 <= match.runner_up_confidence <= match.confidence <= 1.0
    assert match.runner_up not in {None, "cramp_now"}


def test_fallback_threshold_is_configuration(responder: Responder) -> None:
    strict = Matcher(responder.catalog, Thresholds(fallback=1.01))
    assert strict.match("which running shoes should i buy").intent == "out_of_scope"
    assert responder.matcher.match("which running shoes should i buy").intent == "shoe_question"


@pytest.mark.parametrize(
    ("text", "care"),
    [
        ("calf cramping mid run what do i do", "self_care"),
        ("could my new shoes be making my calves tight", "self_care"),
        ("calves tight for 2 months even on rest days", "soon"),
        ("hey there", "none"),
        ("STOP", "none"),
        ("my calf is swollen red and hot after a long flight", "urgent"),
        ("i have chest pain and my calf is sore", "emergency"),
        ("my pee is dark like cola after the marathon", "emergency"),
    ],
)
def test_every_answer_carries_its_care_level(responder: Responder, text: str, care: str) -> None:
    assert responder.matcher.match(text).care == care


def test_urgent_and_check_thresholds_are_configuration(responder: Responder) -> None:
    catalog = responder.catalog
    text = "my calf is swollen and hot"
    assert responder.matcher.match(text).intent == "red_flag"
    # Nothing is urgent enough: the same message gets the check question instead.
    cautious = Matcher(catalog, Thresholds(urgent=1.01, check=0.0))
    checked = cautious.match(text)
    assert (checked.care, checked.check) == ("check", True)
    assert checked.intent not in {"red_flag", "opt_out", "opt_in"}
    # With no band at all, a mild message is neither urgent nor checked.
    relaxed = Matcher(catalog, Thresholds(urgent=1.01, check=1.01))
    assert relaxed.match("calves tight after my run").care == "self_care"


def test_unambiguous_signs_fire_whatever_the_model_says(responder: Responder) -> None:
    deaf = Matcher(responder.catalog, Thresholds(urgent=1.01, check=1.01))
    for text in ("chest pain", "i cant breathe", "coughing up blood and my calf hurts"):
        match = deaf.match(text)
        assert (match.intent, match.care) == ("red_flag", "emergency"), text
    assert deaf.match("no chest pain, calf just tight").intent != "red_flag"


def test_urgent_needs_a_sign_the_rules_can_name(responder: Responder) -> None:
    eager = Matcher(responder.catalog, Thresholds(urgent=0.0, check=0.0, learned_urgent=1.01,
                                                    text_urgent=1.01))
    unnamed = eager.match("calves tight after my run")
    assert (unnamed.care, unnamed.present_signs) == ("check", ())
    named = eager.match("my calf is swollen")
    assert named.care == "urgent" and "swelling" in named.present_signs


def test_a_sign_the_check_question_names_is_asked_about_while_the_model_doubts(
        responder: Responder) -> None:
    """Asking about a swollen calf loses nothing, the question names it; asking about
    dark urine would: the question does not, so that sign keeps the plain bar."""
    doubtful = Matcher(responder.catalog, Thresholds(urgent=0.0, check=0.0, asked_urgent=1.01))
    asked = doubtful.match("my calf is swollen")
    assert (asked.care, asked.intent) == ("check", asked.intent) and asked.intent != "red_flag"
    not_asked = doubtful.match("my pee is dark like cola after the race")
    assert (not_asked.intent, not_asked.care) == ("red_flag", "emergency")
    # A sign the question names beside one it does not: the plain bar.
    both = doubtful.match("my calf is swollen and my pee is dark like cola")
    assert both.intent == "red_flag"
    # The asked bar is never below the urgent one.
    low = Matcher(responder.catalog, Thresholds(urgent=1.01, check=0.0, asked_urgent=0.0))
    assert low.match("my calf is swollen").care == "check"


def test_both_models_sure_is_urgent_without_a_sign_word(responder: Responder) -> None:
    """PAD pain gone to rest in words no pattern has: the learned models' call, and only
    theirs; turned off, the same message is asked about."""
    text = "my calf hurts all the time now even sitting down, and the pain is getting worse fast"
    learned = responder.matcher.match(text)
    assert (learned.intent, learned.care, learned.present_signs) == ("red_flag", "urgent", ())
    off = Matcher(responder.catalog, Thresholds(learned_urgent=1.01, text_urgent=1.01)).match(text)
    assert off.care == "check" and off.intent != "red_flag"
    # Plain soreness with a duration is not a sign, however the words lean.
    assert responder.matcher.match("my calf hurts since yesterday").care not in {
        "urgent", "emergency"}


def test_the_words_only_model_alone_can_be_sure_enough(responder: Responder) -> None:
    """A DVT picture at rest after travel, in words no rule has: the sign-feature model
    doubts it (no sign found), the words-only one does not."""
    text = "la pantorrilla me late aun acostado desde que volvi del viaje"
    assert responder.matcher.match(text).care == "urgent"
    both_only = Matcher(responder.catalog, Thresholds(text_urgent=1.01)).match(text)
    assert both_only.care == "check"


def test_ambiguity_margin_is_configuration(responder: Responder) -> None:
    always = Matcher(responder.catalog, Thresholds(fallback=0.0, ambiguity=1.01))
    never = Matcher(responder.catalog, Thresholds(fallback=0.0, ambiguity=0.0))
    text = "calf cramps and tightness after my run"
    assert always.match(text).ambiguous
    assert not never.match(text).ambiguous


def test_catalog_loads_every_contract_intent() -> None:
    catalog = load_catalog(INTENTS)
    assert len(catalog.intents) >= 15
    for intent in ("cramp_now", "post_run_tightness", "shoe_question", "chronic_pain",
                   "red_flag", "prevention", "hydration", "medication"):
        assert len(set(catalog.intents[intent].examples)) >= 150
    assert len(set(catalog.intents["red_flag"].examples)) >= 300
