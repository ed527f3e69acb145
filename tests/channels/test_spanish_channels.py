"""Spanish over the webhooks: a texted conversation kept in Spanish by the store, and a
call in Spanish with keys and speech (Polly.Lupe, es-US), TwiML parsed as XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from responder.dialogue.replies import render_intent, render_system
from responder.gsm import MAX_SMS_CHARS, is_gsm7
from responder.nlu.catalog import load_catalog
from responder.store.models import Message
from tests.conftest import INTENTS
from tests.twilio_signing import TOKEN, signed_post

CATALOG = load_catalog(INTENTS)
SPANISH = CATALOG.localized("es")
CALL = {"CallSid": "CA" + "5" * 32, "From": "+15550009999", "To": "+15550001000"}
ENGLISH_VOICE = {"voice": "Polly.Joanna", "language": "en-US"}
SPANISH_VOICE = {"voice": "Polly.Lupe", "language": "es-US"}


def _texts(client: FlaskClient, body: str, sid: str) -> list[str]:
    form = {"Body": body, "From": "+15550004444", "To": "+15550001000", "MessageSid": sid}
    response = signed_post(client, form)
    assert response.status_code == 200 and response.mimetype == "application/xml"
    root = ET.fromstring(response.data)
    return [m.text or "" for m in root.findall("Message")]


def test_a_spanish_text_conversation_through_the_store(make_app: Callable[..., Flask]) -> None:
    app = make_app(TWILIO_AUTH_TOKEN=TOKEN)
    client = app.test_client()
    (first,) = _texts(client, "hola, se me acalambro la pantorrilla corriendo", "SM1")
    assert first == render_intent(SPANISH, "cramp_now", "sms", None).text
    (more,) = _texts(client, "mas", "SM2")
    assert more == render_intent(SPANISH, "cramp_now", "sms", None, more=True).text
    # A restart: the next worker reads the conversation's language from the database.
    again = make_app(TWILIO_AUTH_TOKEN=TOKEN).test_client()
    (thanks,) = _texts(again, "ok", "SM3")
    assert thanks in {render_intent(SPANISH, i, "sms", None).text
                      for i in SPANISH.intents}
    (switched,) = _texts(again, "English", "SM4")
    assert switched == render_system(CATALOG, "language_set", "sms").text
    for text in (first, more, thanks, switched):
        assert len(text) <= MAX_SMS_CHARS and is_gsm7(text)
    assert _texts(again, "PARAR", "SM5") == []
    assert _texts(again, "tengo un calambre", "SM6") == []  # opted out: nothing is sent
    # Each message keeps its language, for the console (responder/store/timeline.py).
    store = again.application.extensions["calfline_store"]
    with store.engine.connect() as connection:
        rows = connection.execute(select(Message.direction, Message.language)
                                  .order_by(Message.id)).all()
    assert [language for direction, language in rows if direction == "out"][:4] == \
        ["es", "es", "es", "en"]
    assert [language for direction, language in rows if direction == "in"][0] == "es"


def _call(client: FlaskClient, path: str, **form: str) -> ET.Element:
    response = client.post(path, data={**CALL, **form})
    assert response.status_code == 200 and response.mimetype == "application/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    return root


def _says(root: ET.Element) -> list[tuple[str, dict[str, str]]]:
    return [("".join(say.itertext()), say.attrib) for say in root.iter("Say")]


def _gather(root: ET.Element) -> tuple[ET.Element, str]:
    gather = root.find("Gather")
    assert gather is not None
    return gather, gather.attrib["action"]


def _spoken(name: str) -> str:
    return render_system(SPANISH, name, "voice", None).text


def test_a_call_switches_to_spanish_on_key_9_then_answers_speech_and_keys(
        make_app: Callable[..., Flask]) -> None:
    client = make_app(LANGUAGES="en,es", RATELIMIT_PER_SENDER="",
                      RATELIMIT_PER_IP="").test_client()
    greeting = _call(client, "/voice")
    (english, english_voice), (offer, offer_voice) = _says(greeting)
    assert english_voice == ENGLISH_VOICE and "not a substitute" in english
    assert offer == "Para español, oprima nueve." and offer_voice == SPANISH_VOICE
    gather, action = _gather(greeting)
    assert gather.attrib["language"] == "en-US"

    spanish = _call(client, action, Digits="9")
    said = _says(spanish)
    assert said[0] == (_spoken("voice_greeting"), SPANISH_VOICE)
    assert said[1] == ("For English, press 9.", ENGLISH_VOICE)
    gather, action = _gather(spanish)
    assert gather.attrib["language"] == "es-US" and "pantorrilla" in gather.attrib["hints"]
    assert parse_qs(urlsplit(action).query)["lang"] == ["es"]

    heard = _call(client, action, SpeechResult="tengo un calambre en la pantorrilla ahorita",
                  Confidence="0.91")
    reply = render_intent(SPANISH, "cramp_now", "voice", None).text
    assert _says(heard)[0] == (reply, SPANISH_VOICE)
    gather, action = _gather(heard)
    assert gather.attrib["language"] == "es-US"
    assert _says(heard)[-1] == (_spoken("voice_anything_else"), SPANISH_VOICE)

    keyed = _call(client, action, Digits="2")
    reply = render_intent(SPANISH, "post_run_tightness", "voice", None).text
    assert _says(keyed)[0] == (reply, SPANISH_VOICE)


def test_a_spanish_first_number_greets_in_spanish_and_spells_out_911(
        make_app: Callable[..., Flask]) -> None:
    client = make_app(LANGUAGES="es,en").test_client()
    (greeting, voice), (offer, offer_voice) = _says(_call(client, "/voice"))
    assert voice == SPANISH_VOICE and "9 1 1" in greeting and "911" not in greeting
    assert offer == "For English, press 9." and offer_voice == ENGLISH_VOICE


def test_a_red_flag_spoken_in_spanish_gets_the_urgent_reply_slowly(
        make_app: Callable[..., Flask]) -> None:
    client = make_app(LANGUAGES="es").test_client()
    _, action = _gather(_call(client, "/voice"))
    root = _call(client, action, SpeechResult="mi pantorrilla esta hinchada caliente y roja",
                 Confidence="0.8")
    say = next(root.iter("Say"))
    assert say.attrib == SPANISH_VOICE
    prosody = say.find("prosody")
    assert prosody is not None and prosody.attrib == {"rate": "slow"}
    cares = [None, *SPANISH.intents["red_flag"].care_replies]
    assert prosody.text in {render_intent(SPANISH, "red_flag", "voice", None,
                                          care=c).text for c in cares}
