"""The /voice webhooks as Twilio calls them: form fields in, TwiML parsed as XML out."""

import csv
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from responder import create_app
from responder.dialogue.call_flow import MAX_HINT_CHARS, MAX_HINTS, MENU_DIGITS
from responder.dialogue.replies import render_intent, render_system
from responder.dialogue.respond import Responder
from responder.nlu.catalog import DEFAULT_VARIABLES, load_catalog
from responder.nlu.matcher import Thresholds
from tests.conftest import DATA, INTENTS

PHONE = "+15551234567"
CALL = {"CallSid": "CA0123456789abcdef0123456789abcdef", "From": "+15550001111",
        "To": "+15550002222", "CallStatus": "in-progress"}
Post = Callable[..., ET.Element]
CATALOG = load_catalog(INTENTS)


def _cases() -> list[tuple[str, str, str]]:
    with (DATA / "voice_transcripts.tsv").open(encoding="utf-8", newline="") as f:
        return [(r["intent"], r["confidence"], r["speech"])
                for r in csv.DictReader(f, delimiter="\t")]


@pytest.fixture
def make_client(responder: Responder, tmp_path: Path) -> Iterator[Callable[..., FlaskClient]]:
    """Build test clients for apps with these settings on top of the defaults."""
    apps: list[Flask] = []

    def make(**config: object) -> FlaskClient:
        database = f"sqlite:///{tmp_path / f'calfline{len(apps)}.sqlite3'}"
        settings = {"TESTING": True, "RESPONDER": responder, "DATABASE_URL": database}
        apps.append(create_app({**settings, **config}))
        return apps[-1].test_client()

    yield make
    for app in apps:
        app.extensions["calfline_store"].close()


@pytest.fixture
def unlimited(make_client: Callable[..., FlaskClient]) -> FlaskClient:
    """A client whose many requests from one sender are not rate-limited."""
    return make_client(RATELIMIT_PER_SENDER="", RATELIMIT_PER_IP="")


@pytest.fixture
def post(client: FlaskClient) -> Post:
    return _poster(client)


def _poster(client: FlaskClient) -> Post:
    def post(path: str, **form: str) -> ET.Element:
        response = client.post(path, data={**CALL, **form})
        assert response.status_code == 200, response.data
        assert response.mimetype == "application/xml"
        root = ET.fromstring(response.data)
        assert root.tag == "Response"
        return root

    return post


def _text(element: ET.Element) -> str:
    return "".join(element.itertext())


def _says(root: ET.Element) -> list[str]:
    """What the caller hears before the line listens again (Says outside the Gather)."""
    return [_text(e) for e in root if e.tag == "Say"]


def _action(root: ET.Element) -> str:
    gather = root.find("Gather")
    assert gather is not None
    return gather.attrib["action"]


def _voice(intent: str) -> str:
    return render_intent(CATALOG, intent, "voice", DEFAULT_VARIABLES).text


def _voices(intent: str) -> set[str]:
    """Every reviewed voice reply of an intent: red_flag leads by care level."""
    cares = [None, *CATALOG.intents[intent].care_replies]
    return {render_intent(CATALOG, intent, "voice", DEFAULT_VARIABLES, care=c).text
            for c in cares}


def _system(name: str) -> str:
    return render_system(CATALOG, name, "voice", DEFAULT_VARIABLES).text


def _check_gather(root: ET.Element, language: str = "en-US") -> ET.Element:
    children = [e.tag for e in root]
    assert children[-2:] == ["Gather", "Redirect"], children
    gather = root.find("Gather")
    assert gather is not None
    attrs = gather.attrib
    assert attrs["input"] == "speech dtmf"
    assert attrs["method"] == "POST"
    assert attrs["speechTimeout"] == "auto" and "speechModel" not in attrs
    assert attrs["language"] == language
    assert attrs["actionOnEmptyResult"] == "true"
    assert attrs["numDigits"] == "1"
    action = urlsplit(attrs["action"])
    assert action.path == "/voice/answer" and not action.scheme
    query = parse_qs(action.query)
    assert {"turn", "tries"} <= set(query)
    hints = attrs["hints"].split(", ")
    assert 0 < len(hints) <= MAX_HINTS
    assert all(0 < len(h) <= MAX_HINT_CHARS for h in hints)
    assert len({h.lower() for h in hints}) == len(hints)
    redirect = root.find("Redirect")
    assert redirect is not None and redirect.text == attrs["action"]
    assert redirect.attrib["method"] == "POST"
    for say in root.iter("Say"):
        assert say.attrib == {"voice": "Polly.Joanna", "language": language}
    return gather


def test_incoming_call_greets_then_gathers(post: Post) -> None:
    root = post("/voice")
    assert _says(root) == [_system("voice_greeting")]
    assert "not a substitute for medical care" in _says(root)[0]
    gather = _check_gather(root)
    assert gather.attrib["action"] == "/voice/answer?turn=1&tries=0"
    assert {"calf", "charley horse", "ibuprofen", "orthotics"} <= set(
        gather.attrib["hints"].split(", ")
    )


@pytest.mark.parametrize(("intent", "confidence", "speech"), _cases(),
                         ids=[c[2] for c in _cases()])
def test_transcripts_with_recognition_errors(
    post: Post, intent: str, confidence: str, speech: str
) -> None:
    form = {"SpeechResult": speech}
    if confidence:
        form["Confidence"] = confidence
    root = post("/voice/answer?turn=1&tries=0", **form)
    assert _says(root)[0] in _voices(intent)
    gather = _check_gather(root)
    assert gather.attrib["action"] == "/voice/answer?turn=2&tries=0"
    assert _text(gather) == _system("voice_anything_else")


def test_red_flag_is_spoken_slowly_first_without_a_dial(post: Post) -> None:
    root = post("/voice/answer?turn=1&tries=0", SpeechResult="my calf is swollen and hot")
    first = root[0]
    assert first.tag == "Say"
    prosody = first.find("prosody")
    assert prosody is not None and prosody.attrib == {"rate": "slow"}
    assert prosody.text in _voices("red_flag")
    assert root.find("Dial") is None
    assert "offer" not in _action(root)
    # Pressing 1 afterwards is the keypad menu, never a call out.
    after = post(_action(root), Digits="1")
    assert after.find("Dial") is None and _says(after) == [_voice("cramp_now")]


def test_red_flag_offers_and_dials_the_configured_number(
    make_client: Callable[..., FlaskClient],
) -> None:
    post = _poster(make_client(ESCALATION_PHONE=PHONE))
    root = post("/voice/answer?turn=1&tries=0", SpeechResult="i felt a pop in my calf")
    assert _text(root[0]) in _voices("red_flag")
    gather = _check_gather(root)
    assert gather.attrib["action"] == "/voice/answer?turn=2&tries=0&offer=1"
    assert _text(gather) == _system("voice_connect_offer")
    assert root.find("Dial") is None
    for form in ({"Digits": "1"}, {"SpeechResult": "connect please", "Confidence": "0.7"}):
        connected = post(gather.attrib["action"], **form)
        assert [e.tag for e in connected] == ["Say", "Dial", "Say", "Hangup"]
        assert connected.find("Dial").text == PHONE  # type: ignore[union-attr]


def test_voices_without_ssml_get_plain_text(make_client: Callable[..., FlaskClient]) -> None:
    post = _poster(make_client(VOICE="woman"))
    root = post("/voice/answer", SpeechResult="my calf is swollen and hot")
    assert root[0].find("prosody") is None and root[0].text in _voices("red_flag")
    assert root[0].attrib["voice"] == "woman"


def test_speech_model_switches_to_a_whole_second_timeout(
    make_client: Callable[..., FlaskClient],
) -> None:
    root = _poster(make_client(VOICE_SPEECH_MODEL="phone_call"))("/voice")
    gather = root.find("Gather")
    assert gather is not None
    assert gather.attrib["speechModel"] == "phone_call"
    assert gather.attrib["speechTimeout"].isdigit()


@pytest.mark.parametrize(("digit", "intent"), sorted(MENU_DIGITS.items()))
def test_keypad_menu(post: Post, digit: str, intent: str) -> None:
    root = post("/voice/answer?turn=3&tries=2", Digits=digit)
    assert _says(root) == [_voice(intent)]
    assert _action(root) == "/voice/answer?turn=4&tries=0"


def test_zero_repeats_the_menu(post: Post) -> None:
    root = post("/voice/answer?turn=2&tries=0", Digits="0")
    assert _says(root) == []
    assert _text(_check_gather(root)) == _system("voice_menu")


def test_a_silent_call_hangs_up_after_a_reprompt_and_the_menu(post: Post) -> None:
    root = post("/voice")
    heard = []
    for requests in range(1, 10):
        # Twilio calls the action with no SpeechResult, or follows the Redirect.
        url = _action(root) if requests % 2 else root.find("Redirect").text  # type: ignore[union-attr]
        root = post(url)
        if root.find("Hangup") is not None:
            break
        heard.append(_text(_check_gather(root)))
    assert requests == 3
    assert heard == [_system("voice_reprompt"), _system("voice_menu")]
    assert [e.tag for e in root] == ["Say", "Hangup"]
    assert _says(root) == [_system("voice_goodbye")]


@pytest.mark.parametrize(
    "form",
    [{"SpeechResult": ""}, {"SpeechResult": "   "}, {"Digits": "9"}, {"Digits": "#"},
     {"SpeechResult": "my calf is cramping", "Confidence": "0.05"}],
)
def test_no_usable_input_gets_one_reprompt(post: Post, form: dict[str, str]) -> None:
    root = post("/voice/answer?turn=1&tries=0", **form)
    assert _says(root) == []
    assert _text(_check_gather(root)) == _system("voice_reprompt")
    assert _action(root) == "/voice/answer?turn=2&tries=1"


@pytest.mark.parametrize("confidence", [None, "", "abc", "NaN", "1e999", "-3"])
def test_missing_or_odd_confidence_never_breaks(post: Post, confidence: str | None) -> None:
    form = {"SpeechResult": "charlie horse in my half"}
    if confidence is not None:
        form["Confidence"] = confidence
    root = post("/voice/answer?turn=1&tries=0", **form)
    if confidence == "-3":  # a (nonsense) negative confidence is below any threshold
        assert _says(root) == []
    else:
        assert _says(root) == [_voice("cramp_now")]


def test_turn_limit_ends_a_talkative_call(make_client: Callable[..., FlaskClient]) -> None:
    post = _poster(make_client(VOICE_MAX_TURNS=3))
    root = post("/voice")
    requests = 0
    while root.find("Hangup") is None and requests < 10:
        root = post(_action(root), SpeechResult="my calves are tight after my run")
        requests += 1
    assert requests == 3
    assert _says(root) == [_voice("post_run_tightness"), _system("voice_goodbye")]
    assert root.find("Gather") is None and root.find("Redirect") is None


def test_goodbye_ends_the_call(post: Post) -> None:
    root = post("/voice/answer?turn=1&tries=0", SpeechResult="thank you bye")
    assert [e.tag for e in root] == ["Say", "Hangup"]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.dictionaries(st.sampled_from(["turn", "tries", "offer", "x"]),
                          st.text(max_size=6) | st.integers(-5, 99).map(str), max_size=4),
    form=st.dictionaries(
        st.sampled_from(["SpeechResult", "Confidence", "Digits", "To", "From"]),
        st.text(max_size=40), max_size=5,
    ),
)
def test_any_input_gets_valid_twiml(
    unlimited: FlaskClient, query: dict[str, str], form: dict[str, str]
) -> None:
    response = unlimited.post("/voice/answer", query_string=query, data=form)
    assert response.status_code == 200
    root = ET.fromstring(response.data)
    assert root.tag == "Response" and len(root) > 0
    gather = root.find("Gather")
    if gather is not None:
        turn = int(parse_qs(urlsplit(gather.attrib["action"]).query)["turn"][0])
        assert 2 <= turn <= 6
    else:
        assert root[-1].tag == "Hangup"


def test_get_is_refused(client: FlaskClient) -> None:
    assert client.get("/voice").status_code == 405


def test_clinic_escalation_number_is_dialled_for_its_own_number(
    make_client: Callable[..., FlaskClient],
) -> None:
    clinics = pytest.importorskip("responder.frontdesk.clinics")
    client = make_client()
    client.application.extensions["calfline_clinics"] = clinics.ClinicDirectory([
        clinics.Clinic(id="north", name="North Clinic", numbers=("+15550002222",),
                       phone="+15550003333", escalation_phone="+15550004444"),
        clinics.Clinic(id="south", name="South Clinic", numbers=("+15550005555",),
                       phone="+15550006666", escalation_phone="+911"),
    ])
    post = _poster(client)
    root = post("/voice/answer?turn=2&tries=0&offer=1", Digits="1")
    assert root.find("Dial").text == "+15550004444"  # type: ignore[union-attr]
    other = client.post("/voice/answer?turn=2&tries=0&offer=1",
                        data={**CALL, "To": "+15559999999", "Digits": "1"})
    assert ET.fromstring(other.data).find("Dial") is None
    # A clinic file's short code is never dialled: the line tells callers to call 911.
    south = client.post("/voice/answer?turn=2&tries=0&offer=1",
                        data={**CALL, "To": "+15550005555", "Digits": "1"})
    assert ET.fromstring(south.data).find("Dial") is None


TOKEN = "voice-test-token-0123456789abcdef"


def _signed(client: FlaskClient, path: str, form: dict[str, str], token: str) -> int:
    signature = RequestValidator(token).compute_signature(f"http://localhost{path}", form)
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature}).status_code


def test_twilio_signed_requests_are_answered(make_client: Callable[..., FlaskClient]) -> None:
    client = make_client(TWILIO_AUTH_TOKEN=TOKEN)
    form = {**CALL, "SpeechResult": "my car is cramping", "Confidence": "0.41"}
    assert _signed(client, "/voice", dict(CALL), TOKEN) == 200
    assert _signed(client, "/voice/answer?turn=1&tries=0", form, TOKEN) == 200


def test_badly_signed_requests_are_refused(make_client: Callable[..., FlaskClient]) -> None:
    pytest.importorskip("responder.channels.signatures")
    client = make_client(TWILIO_AUTH_TOKEN=TOKEN)
    form = {**CALL, "SpeechResult": "my car is cramping"}
    assert _signed(client, "/voice/answer?turn=1&tries=0", form, "not-the-token") == 403
    # The turn count is part of the signed URL: a replayed body on another turn fails.
    signature = RequestValidator(TOKEN).compute_signature(
        "http://localhost/voice/answer?turn=1&tries=0", form)
    response = client.post("/voice/answer?turn=5&tries=0", data=form,
                           headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


def test_a_signed_call_against_a_real_server(tmp_path: Path) -> None:
    from tests.servers import gunicorn

    env = {"TWILIO_AUTH_TOKEN": TOKEN, "CALFLINE_ESCALATION_PHONE": PHONE,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'calfline.sqlite3'}",
           "CALFLINE_HASH_SECRET": "voice-test-hash-secret"}
    with gunicorn(env, workers=1) as base:

        def call(path: str, **fields: str) -> ET.Element:
            form = {**CALL, **fields}
            request = urllib.request.Request(
                base + path, data=urlencode(form).encode(), method="POST",
                headers={"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(
                    base + path, form)},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.headers.get_content_type() == "application/xml"
                return ET.fromstring(response.read())

        greeting = call("/voice")
        flagged = call(_action(greeting), SpeechResult="my half is swollen and hot",
                       Confidence="0.52")
        assert _text(flagged[0]) in _voices("red_flag")
        connected = call(_action(flagged), Digits="1")
        assert connected.find("Dial").text == PHONE  # type: ignore[union-attr]
        forged = urllib.request.Request(base + "/voice", data=b"From=%2B1555", method="POST",
                                        headers={"X-Twilio-Signature": "bad"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=30)
        refused.value.close()
        assert refused.value.code == 403


@pytest.mark.parametrize(("answer", "intent"), [({"SpeechResult": "yes"}, "red_flag"),
                                                ({"Digits": "1"}, "red_flag"),
                                                ({"SpeechResult": "no", "Confidence": "0.8"},
                                                 "post_run_tightness"),
                                                ({"Digits": "2"}, "post_run_tightness")])
def test_the_check_question_over_the_webhook(
    make_client: Callable[..., FlaskClient], responder: Responder, answer: dict[str, str],
    intent: str,
) -> None:
    """Turn 1 asks (the pending answer rides in the Gather URL); turn 2's yes/no decides."""
    cautious = Responder(responder.catalog, Thresholds(urgent=1.0, check=0.0))
    post = _poster(make_client(RESPONDER=cautious))
    asked = post("/voice/answer?turn=1&tries=0", SpeechResult="calves tight after my run",
                 Confidence="0.9")
    assert _says(asked) == [_system("check")]
    assert "check=post_run_tightness" in _action(asked)
    answered = post(_action(asked), **answer)
    said = answered[0]
    if intent == "red_flag":
        prosody = said.find("prosody")
        assert prosody is not None and prosody.attrib == {"rate": "slow"}
        assert prosody.text == render_intent(CATALOG, "red_flag", "voice", DEFAULT_VARIABLES,
                                             care="urgent").text
    else:
        assert _text(said) == _voice(intent)
    assert "check=" not in _action(answered)
