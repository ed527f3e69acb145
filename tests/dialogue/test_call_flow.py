"""The call state machine on its own: turns, re-prompts, the keypad menu, goodbye."""

import os
import re
import subprocess
import sys
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from responder.dialogue.call_flow import (
    MAX_HINT_CHARS,
    MAX_HINTS,
    MENU_DIGITS,
    CallFlow,
    CallRules,
    CallState,
    Connect,
    HangUp,
    Heard,
    Listen,
    Speak,
    Step,
    call_rules,
    speech_hints,
)
from responder.dialogue.replies import render_intent, render_system
from responder.dialogue.respond import Responder
from responder.errors import ConfigError
from responder.nlu.catalog import DEFAULT_VARIABLES, Intent
from responder.nlu.matcher import Thresholds
from responder.web.config import from_environment
from tests.conftest import ROOT

PHONE = "+15551234567"


def _flow(responder: Responder, **rules: object) -> CallFlow:
    return CallFlow(responder, replace(CallRules(), **rules), DEFAULT_VARIABLES)  # type: ignore[arg-type]


def _system(responder: Responder, name: str) -> str:
    return render_system(responder.catalog, name, "voice", DEFAULT_VARIABLES).text


def _intent(responder: Responder, intent: str, care: str | None = None) -> str:
    return render_intent(responder.catalog, intent, "voice", DEFAULT_VARIABLES, care=care).text


def _listen(step: Step) -> Listen | None:
    last = step.actions[-1]
    return last if isinstance(last, Listen) else None


def test_start_greets_then_listens(responder: Responder) -> None:
    step = _flow(responder).start()
    greeting, listen = step.actions
    assert isinstance(greeting, Speak) and isinstance(listen, Listen)
    assert "not a substitute for medical care" in greeting.text
    assert "911" in greeting.text
    assert listen.state == CallState(turn=1, tries=0, offer=False)


def test_silence_gets_reprompt_then_menu_then_goodbye(responder: Responder) -> None:
    flow = _flow(responder)
    state = CallState()
    prompts = []
    for _ in range(10):
        step = flow.answer(state, Heard())
        listen = _listen(step)
        if listen is None:
            break
        prompts.append(listen.prompt)
        state = listen.state
    assert prompts == [_system(responder, "voice_reprompt"), _system(responder, "voice_menu")]
    assert step.actions == (Speak(_system(responder, "voice_goodbye")), HangUp())


def test_understood_speech_resets_the_tries(responder: Responder) -> None:
    flow = _flow(responder)
    step = flow.answer(CallState(turn=2, tries=1), Heard("my calf is cramping right now"))
    listen = _listen(step)
    assert listen is not None and listen.state == CallState(turn=3, tries=0)
    assert listen.prompt == _system(responder, "voice_anything_else")
    assert step.actions[0] == Speak(_intent(responder, "cramp_now"))


@pytest.mark.parametrize(("digit", "intent"), sorted(MENU_DIGITS.items()))
def test_menu_digits_speak_their_intent(responder: Responder, digit: str, intent: str) -> None:
    step = _flow(responder).answer(CallState(turn=3, tries=2), Heard(digits=digit))
    assert step.actions[0] == Speak(_intent(responder, intent))
    listen = _listen(step)
    assert listen is not None and listen.state.tries == 0


def test_zero_repeats_the_menu(responder: Responder) -> None:
    step = _flow(responder).answer(CallState(turn=2, tries=1), Heard(digits="0"))
    assert step.actions == (Listen(_system(responder, "voice_menu"), CallState(3, 0)),)


def test_unknown_key_counts_as_not_understood(responder: Responder) -> None:
    step = _flow(responder).answer(CallState(), Heard(digits="7"))
    assert step.actions == (Listen(_system(responder, "voice_reprompt"), CallState(2, 1)),)


def test_turn_limit_ends_even_a_good_conversation(responder: Responder) -> None:
    flow = _flow(responder, max_turns=3)
    state = CallState()
    answers = 0
    while True:
        step = flow.answer(state, Heard("my calves are tight after my run", 0.9))
        answers += 1
        listen = _listen(step)
        if listen is None:
            break
        state = listen.state
    assert answers == 3
    assert step.actions[0] == Speak(_intent(responder, "post_run_tightness"))
    assert step.actions[-2:] == (Speak(_system(responder, "voice_goodbye")), HangUp())


inputs = st.builds(
    Heard,
    speech=st.sampled_from(["", "my calf is cramping", "my calf is swollen", "connect", "uh"])
    | st.text(max_size=30),
    confidence=st.none() | st.floats(allow_nan=True),
    digits=st.sampled_from(["", "0", "1", "2", "3", "4", "5", "#", "*", "12"]),
)


@settings(max_examples=60, deadline=None)
@given(
    caller=st.lists(inputs, min_size=60, max_size=60),
    max_turns=st.integers(1, 8),
    phone=st.sampled_from(["", PHONE]),
)
def test_no_call_outlives_the_turn_limit(
    responder: Responder, caller: list[Heard], max_turns: int, phone: str
) -> None:
    flow = _flow(responder, max_turns=max_turns, escalation_phone=phone)
    listen = _listen(flow.start())
    answered, asked = 0, False
    while listen is not None:
        step = flow.answer(listen.state, caller[answered])
        answered += 1
        # Only a red flag's connect offer or the check question's answer on the last
        # turn adds one turn, and only once.
        assert answered <= max_turns + (1 if phone or asked else 0)
        asked = asked or step.template_id.startswith("system.check")
        assert all(isinstance(a, Speak | Listen | Connect | HangUp) for a in step.actions)
        listen = _listen(step)
        if listen is None:
            assert isinstance(step.actions[-1], HangUp)
            dials = [a for a in step.actions if isinstance(a, Connect)]
            assert dials == [] or (phone and dials == [Connect(phone)])


def test_red_flag_without_escalation_number_never_offers_to_connect(responder: Responder) -> None:
    flow = _flow(responder)
    step = flow.answer(CallState(), Heard("my calf is swollen red and hot", 0.8))
    assert step.intent == "red_flag"
    assert step.actions[0] == Speak(_intent(responder, "red_flag", "urgent"), slow=True)
    listen = _listen(step)
    assert listen is not None and not listen.state.offer
    assert listen.prompt == _system(responder, "voice_anything_else")
    # A forged offer=1 in the URL cannot make it dial either.
    again = flow.answer(CallState(2, 0, offer=True), Heard(digits="1"))
    assert not any(isinstance(a, Connect) for a in again.actions)


@pytest.mark.parametrize("heard", [Heard(digits="1"), Heard("yes connect me"), Heard("connect")])
def test_red_flag_with_escalation_number_offers_and_connects(
    responder: Responder, heard: Heard
) -> None:
    flow = _flow(responder, escalation_phone=PHONE)
    step = flow.answer(CallState(), Heard("i felt a pop in my calf and cant walk"))
    assert step.actions[0] == Speak(_intent(responder, "red_flag", "urgent"), slow=True)
    listen = _listen(step)
    assert listen is not None and listen.state.offer
    assert listen.prompt == _system(responder, "voice_connect_offer")
    connect = flow.answer(listen.state, heard)
    assert connect.actions == (
        Speak(_system(responder, "voice_connecting")),
        Connect(PHONE),
        Speak(_system(responder, "voice_connect_ended")),
        HangUp(),
    )


@pytest.mark.parametrize("speech", ["no", "No thanks.", "nope", "not now", "I'm fine"])
def test_declining_the_offer_politely_goes_on(responder: Responder, speech: str) -> None:
    flow = _flow(responder, escalation_phone=PHONE)
    step = flow.answer(CallState(2, 0, offer=True), Heard(speech, 0.9))
    assert step.actions == (Listen(_system(responder, "voice_anything_else"), CallState(3, 0)),)
    assert step.template_id == "system.voice_anything_else.voice"
    # Without an offer on the table, "no" is matched like any other words.
    plain = flow.answer(CallState(2, 0), Heard(speech, 0.9))
    assert plain.template_id != "system.voice_anything_else.voice"


def test_a_red_flag_on_the_last_turn_still_offers_to_connect_once(responder: Responder) -> None:
    flow = _flow(responder, max_turns=3, escalation_phone=PHONE)
    flagged = flow.answer(CallState(3, 0), Heard("my calf is swollen and hot"))
    assert flagged.actions[0] == Speak(_intent(responder, "red_flag", "urgent"), slow=True)
    listen = _listen(flagged)
    assert listen is not None and listen.state == CallState(4, 0, offer=True)
    assert listen.prompt == _system(responder, "voice_connect_offer")
    assert any(isinstance(a, Connect) for a in flow.answer(listen.state, Heard(digits="1")).actions)
    # The extra turn never extends itself: another red flag, silence or "no" ends the call.
    for heard in (Heard("my calf is swollen and hot"), Heard(), Heard("no")):
        step = flow.answer(listen.state, heard)
        assert _listen(step) is None and isinstance(step.actions[-1], HangUp)
    # Without an escalation number the last turn ends as before.
    plain = _flow(responder, max_turns=3).answer(CallState(3, 0), Heard("my calf is swollen"))
    assert _listen(plain) is None


def test_steps_name_their_template_and_what_was_spoken(responder: Responder) -> None:
    flow = _flow(responder, escalation_phone=PHONE)
    assert flow.start().template_id == "system.voice_greeting.voice"
    keyed = flow.answer(CallState(), Heard(digits="2"))
    assert keyed.intent == "post_run_tightness" and keyed.match.reason == "keypad"  # type: ignore[union-attr]
    assert keyed.template_id == "post_run_tightness.voice"
    assert keyed.spoken == " ".join([_intent(responder, "post_run_tightness"),
                                     _system(responder, "voice_anything_else")])
    silent = flow.answer(CallState(), Heard())
    assert silent.match is None and silent.template_id == "system.voice_reprompt.voice"
    assert silent.spoken == _system(responder, "voice_reprompt")
    gone = flow.answer(CallState(2, 2), Heard())
    assert gone.template_id == "system.voice_goodbye.voice"
    assert flow.answer(CallState(2, 0, offer=True), Heard(digits="1")).template_id == (
        "system.voice_connecting.voice")


def test_offer_repeats_once_on_silence_and_other_speech_is_answered(responder: Responder) -> None:
    flow = _flow(responder, escalation_phone=PHONE)
    offered = CallState(2, 0, offer=True)
    silent = _listen(flow.answer(offered, Heard()))
    assert silent is not None and silent.prompt == _system(responder, "voice_connect_offer")
    assert silent.state == CallState(3, 1, offer=True)
    other = flow.answer(offered, Heard("my calf is cramping"))
    assert other.intent == "cramp_now" and not any(isinstance(a, Connect) for a in other.actions)


def test_low_confidence_is_reprompted_but_a_red_flag_is_still_answered(
    responder: Responder,
) -> None:
    flow = _flow(responder, min_confidence=0.3)
    unsure = flow.answer(CallState(), Heard("my calf is cramping", 0.1))
    assert unsure.actions == (Listen(_system(responder, "voice_reprompt"), CallState(2, 1)),)
    urgent = flow.answer(CallState(), Heard("chest pain and my calf is swollen", 0.1))
    assert urgent.intent == "red_flag" and urgent.actions[0].slow  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("speech", "intent"), [("thank you bye", "thanks"), ("stop", "opt_out")]
)
def test_goodbye_and_stop_end_the_call(responder: Responder, speech: str, intent: str) -> None:
    step = _flow(responder).answer(CallState(), Heard(speech))
    assert step.intent == intent
    assert isinstance(step.actions[-1], HangUp)
    assert all(isinstance(a, Speak) and a.text for a in step.actions[:-1])


@pytest.mark.parametrize("confidence", [None, "", "abc", "nan", "inf", "-1e999"])
def test_confidence_absent_or_unreadable_means_unknown(confidence: str | None) -> None:
    assert Heard.from_fields(" my calf ", confidence, None) == Heard("my calf", None, "")


def test_confidence_is_read() -> None:
    assert Heard.from_fields("x", "0.42", "").confidence == pytest.approx(0.42)


@pytest.mark.parametrize(
    ("query", "state"),
    [
        ({}, CallState(1, 0, False)),
        ({"turn": "3", "tries": "1", "offer": "1"}, CallState(3, 1, True)),
        ({"turn": "abc", "tries": "-4"}, CallState(1, 0, False)),
        # max_turns + 1 is the one extra turn a last-turn connect offer may use.
        ({"turn": "99999", "tries": "99", "offer": "yes"}, CallState(7, 2, False)),
    ],
)
def test_state_from_any_query_string(query: dict[str, str], state: CallState) -> None:
    assert CallState.from_query(query, CallRules(max_turns=6)) == state


def test_state_round_trips_through_the_query() -> None:
    state = CallState(4, 2, True)
    query = {k: str(v) for k, v in state.query().items()}
    assert CallState.from_query(query, CallRules()) == state


def test_hints_come_from_the_line_s_intents_and_fit_twilio_limits(
    responder: Responder,
) -> None:
    hints = speech_hints(responder.catalog).split(", ")
    intents = responder.catalog.intents.values()
    keywords = {k.lower() for i in intents if i.id != "out_of_scope" for k in i.keywords}
    assert {h.lower() for h in hints} == keywords
    assert len(hints) == len({h.lower() for h in hints}) <= MAX_HINTS
    assert {"charley horse", "ibuprofen", "calf"} <= set(hints)
    # out_of_scope's words would pull the recognizer away from the calf.
    assert "pizza" not in hints and "weather" not in hints


def test_hints_are_capped(responder: Responder) -> None:
    many = Intent(
        id="many", label="many", examples=("x",), replies={},
        keywords=tuple(f"word {n}" for n in range(700)) + ("x" * 150, "salt, water", "CALF"),
    )
    catalog = replace(responder.catalog, intents={**responder.catalog.intents, "many": many})
    hints = speech_hints(catalog).split(", ")
    assert len(hints) == MAX_HINTS
    assert all(0 < len(h) <= MAX_HINT_CHARS and "," not in h for h in hints)
    assert "x" * 150 not in hints


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CALFLINE_VOICE_MAX_TURNS", "0"),
        ("CALFLINE_VOICE_MIN_CONFIDENCE", "1.5"),
        ("CALFLINE_ESCALATION_PHONE", "911"),
        ("CALFLINE_ESCALATION_PHONE", "+911"),
        ("CALFLINE_ESCALATION_PHONE", "112"),
        ("CALFLINE_ESCALATION_PHONE", "call the front desk"),
    ],
)
def test_bad_voice_settings_stop_start_up(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        call_rules(from_environment({variable: value}))


def test_escalation_phone_is_normalised() -> None:
    rules = call_rules(from_environment({"CALFLINE_ESCALATION_PHONE": "+1 (555) 123-4567"}))
    assert rules == CallRules(6, 0.2, PHONE)


def _voice_templates(responder: Responder) -> list[tuple[str, str]]:
    catalog = responder.catalog
    texts = [(f"{i.id}.voice", i.replies["voice"]) for i in catalog.intents.values()]
    texts += [(f"system.{n}.voice", c["voice"]) for n, c in catalog.system.items()]
    options = {"option1": "a cramp happening right now", "option2": "an urgent warning sign"}
    return [(name, text.format_map({**DEFAULT_VARIABLES, **options})) for name, text in texts]


def test_every_voice_template_is_speakable(responder: Responder) -> None:
    # Beyond test_templates' checks: only what a speech engine reads plainly, and
    # no run of capitals it would spell out letter by letter (an abbreviation).
    for name, text in _voice_templates(responder):
        assert re.fullmatch(r"[A-Za-z0-9 .,?!':-]*", text), name
        assert not re.search(r"\b[A-Z]{2,}\b", text.replace("CalfLine", "")), name
        assert len(text.split()) <= 80, name


def test_call_prompts_are_short(responder: Responder) -> None:
    # Prompts are heard on every turn: a caller should not wait through a speech.
    for name in ("voice_reprompt", "voice_anything_else", "voice_connect_offer",
                 "voice_connecting"):
        assert len(_system(responder, name).split()) <= 25, name


def _chat(stdin: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CALFLINE_")}
    result = subprocess.run(
        [sys.executable, "-m", "responder.cli", "chat", "--voice"], input=stdin,
        capture_output=True, text=True, encoding="utf-8", cwd=ROOT, env={**clean, **env},
        timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_chat_voice_simulates_a_call_to_the_turn_limit() -> None:
    out = _chat("my car is cramping\n\n2\nstill here\nand again\n", CALFLINE_VOICE_MAX_TURNS="3")
    assert "not a substitute for medical care" in out
    assert "[cramp_now" in out and "Sorry, I did not catch that" in out
    assert out.count("[listening") == 3
    assert out.rstrip().endswith("[call ended]")
    assert "still here" not in out and "[caller hung up]" not in out


def test_chat_voice_offers_the_connection_when_configured() -> None:
    out = _chat("my calf is swollen and hot\n1\n", CALFLINE_ESCALATION_PHONE=PHONE)
    assert "(slowly) Please listen carefully" in out
    assert "press one, or say connect" in out
    assert f"[dialing {PHONE}]" in out
    plain = _chat("my calf is swollen and hot\n")
    assert "say connect" not in plain and "[dialing" not in plain
    assert plain.rstrip().endswith("[caller hung up]")


def _checked(flow: CallFlow, responder: Responder) -> tuple[Step, str]:
    """Ask the check question on turn 1: a message in the check band, by configuration."""
    text = "my calves feel kind of tight after my run"
    match = flow.responder.matcher.match(text)
    assert match.check, match
    step = flow.answer(CallState(), Heard(text, 0.9))
    return step, match.intent


@pytest.fixture
def cautious(responder: Responder) -> Responder:
    """The same model with every message in the check band."""
    return Responder(responder.catalog, Thresholds(urgent=1.01, check=0.0))


def test_the_check_question_is_one_turn(cautious: Responder) -> None:
    flow = _flow(cautious)
    step, _ = _checked(flow, cautious)
    assert step.actions[0] == Speak(_system(cautious, "check"))
    listen = _listen(step)
    assert listen is not None and listen.prompt is None and listen.state.check


@pytest.mark.parametrize("heard", [Heard("yes", 0.9), Heard("Yeah.", 0.5), Heard(digits="1")])
def test_yes_to_the_check_is_the_urgent_reply(cautious: Responder, heard: Heard) -> None:
    flow = _flow(cautious)
    step, _ = _checked(flow, cautious)
    listen = _listen(step)
    assert listen is not None
    answer = flow.answer(listen.state, heard)
    assert answer.intent == "red_flag" and answer.match is not None
    assert answer.match.care == "urgent"
    assert answer.actions[0] == Speak(_intent(cautious, "red_flag", "urgent"), slow=True)


@pytest.mark.parametrize("heard", [Heard("no", 0.9), Heard("nope"), Heard(digits="2")])
def test_no_to_the_check_answers_what_they_asked(cautious: Responder, heard: Heard) -> None:
    flow = _flow(cautious)
    step, pending = _checked(flow, cautious)
    listen = _listen(step)
    assert listen is not None
    answer = flow.answer(listen.state, heard)
    assert answer.intent == pending
    assert answer.actions[0] == Speak(_intent(cautious, pending))


def test_anything_else_after_the_check_is_a_new_message(responder: Responder) -> None:
    flow = _flow(responder)
    state = CallState(2, 0, check="post_run_tightness")
    answer = flow.answer(state, Heard("what shoes should i buy for my calves", 0.9))
    assert answer.intent == "shoe_question"
    # A forged check id in the URL is ignored, never rendered.
    forged = CallState.from_query({"turn": "2", "check": "red_flag"}, CallRules())
    assert forged.check == ""
