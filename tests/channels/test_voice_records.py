"""Call turns in the conversation store: recorded once, however often Twilio re-sends them,
numbers hashed, SMS opt-out left alone, and a red flag queued for the clinic."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from responder.dialogue.replies import render_intent, render_system
from responder.dialogue.respond import Responder
from responder.nlu.catalog import DEFAULT_VARIABLES
from responder.store.conversation_store import MessageRecord
from responder.store.database import open_engine
from responder.store.escalation_outbox import Escalation
from responder.store.models import Conversation, Message
from tests.frontdesk.conftest import RIVERSIDE_NUMBER, start_webhook, write_clinics_file
from tests.servers import gunicorn
from tests.twilio_signing import TOKEN, count_messages, sign, signed_post

CALLER = "+15550001111"
LINE = "+15550002222"
CALL_SID = "CA" + "a" * 32
ANSWER = "/voice/answer?turn={turn}&tries=0"


def _turn(client: FlaskClient, turn: int, headers: dict[str, str] | None = None,
          **fields: str) -> bytes:
    """POST one signed turn of a call as Twilio sends it; return the TwiML."""
    form = {"CallSid": CALL_SID, "From": CALLER, "To": LINE, "CallStatus": "in-progress",
            **fields}
    path = ANSWER.format(turn=turn)
    response = signed_post(client, form, url=f"http://localhost{path}", path=path,
                           headers=headers)
    assert response.status_code == 200, response.data
    ET.fromstring(response.data)  # valid XML
    return response.data


def _messages(client: FlaskClient) -> list[MessageRecord]:
    store = client.application.extensions["calfline_store"]
    (conversation,) = store.recent_conversations([LINE])
    return list(store.messages(conversation.id))


def _voice(responder: Responder, intent: str) -> str:
    return render_intent(responder.catalog, intent, "voice", DEFAULT_VARIABLES).text


def _system(responder: Responder, name: str) -> str:
    return render_system(responder.catalog, name, "voice", DEFAULT_VARIABLES).text


def test_each_turn_and_the_spoken_reply_are_recorded(
    make_app: Callable[..., Flask], responder: Responder,
) -> None:
    client = make_app(TWILIO_AUTH_TOKEN=TOKEN).test_client()
    _turn(client, 1, SpeechResult="my car is cramping", Confidence="0.61")
    _turn(client, 2)  # silence
    _turn(client, 3, Digits="3")
    rows = _messages(client)
    inbound = [r for r in rows if r.direction == "in"]
    replies = [r for r in rows if r.direction == "out"]
    assert [r.body for r in inbound] == ["my car is cramping", "", "3"]
    assert [r.intent for r in inbound] == ["cramp_now", "", "shoe_question"]
    assert inbound[0].confidence is not None and inbound[2].confidence == 1.0
    assert {r.channel for r in rows} == {"voice"}
    assert {r.twilio_sid for r in inbound} == {CALL_SID}
    anything_else = _system(responder, "voice_anything_else")
    assert [r.body for r in replies] == [
        f"{_voice(responder, 'cramp_now')} {anything_else}",
        _system(responder, "voice_reprompt"),
        f"{_voice(responder, 'shoe_question')} {anything_else}",
    ]
    assert [r.template_id for r in replies] == [
        "cramp_now.voice", "system.voice_reprompt.voice", "shoe_question.voice"]
    # The caller's number is kept as the store keeps every number: a keyed hash and last 4.
    store = client.application.extensions["calfline_store"]
    with store.engine.connect() as connection:
        conversation = connection.execute(select(Conversation)).one()
        dump = " ".join(str(v) for table in ("conversations", "messages")
                        for row in connection.execute(text(f"SELECT * FROM {table}"))
                        for v in row)
    assert conversation.sender_last4 == "1111" and conversation.sender_hash != CALLER
    assert "5550001111" not in dump


def test_a_retried_turn_gets_the_same_twiml_and_leaves_one_record(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(TWILIO_AUTH_TOKEN=TOKEN).test_client()
    first = _turn(client, 1, SpeechResult="my calf is swollen and hot")
    retried = _turn(client, 1, {"I-Twilio-Idempotency-Token": "retry-1"},
                    SpeechResult="my calf is swollen and hot")
    assert retried == first and count_messages(client) == 2
    _turn(client, 2, SpeechResult="my calves are tight after my run")
    late = _turn(client, 1, SpeechResult="my calf is swollen and hot")  # a late retry
    assert late == first and count_messages(client) == 4


def test_the_idempotency_token_dedupes_a_turn_without_call_sid(client: FlaskClient) -> None:
    form = {"From": CALLER, "To": LINE, "SpeechResult": "calf cramp right now"}
    headers = {"I-Twilio-Idempotency-Token": "token-1"}
    first = client.post(ANSWER.format(turn=1), data=form, headers=headers)
    again = client.post(ANSWER.format(turn=1), data=form, headers=headers)
    assert first.data == again.data and count_messages(client) == 2
    client.post(ANSWER.format(turn=1), data=form)  # no identifier at all: a new record
    assert count_messages(client) == 4


def _sms(client: FlaskClient, body: str, sid: str) -> ET.Element:
    form = {"From": CALLER, "To": LINE, "Body": body, "MessageSid": sid}
    return ET.fromstring(client.post("/sms", data=form).data)


def test_an_sms_opt_out_does_not_silence_a_call(client: FlaskClient,
                                                 responder: Responder) -> None:
    assert _sms(client, "STOP", "SM1").find("Message") is None
    root = ET.fromstring(_turn(client, 1, SpeechResult="calf cramp right now"))
    assert [e.text for e in root if e.tag == "Say"] == [_voice(responder, "cramp_now")]
    assert _sms(client, "my calves are tight", "SM2").find("Message") is None  # still opted out
    spoken = [r for r in _messages(client) if r.direction == "out" and r.channel == "voice"]
    anything_else = _system(responder, "voice_anything_else")
    # Recorded as it was said: the SMS opt-out does not blank a call's reply.
    assert [r.body for r in spoken] == [f"{_voice(responder, 'cramp_now')} {anything_else}"]


def test_stop_on_a_call_ends_it_without_opting_out_of_sms(client: FlaskClient) -> None:
    root = ET.fromstring(_turn(client, 1, SpeechResult="stop"))
    assert root[-1].tag == "Hangup"
    assert _sms(client, "calf cramp right now", "SM1").find("Message") is not None


def test_a_call_sets_the_context_for_the_next_text(client: FlaskClient,
                                                   responder: Responder) -> None:
    _turn(client, 1, SpeechResult="my calf is swollen and hot")
    _turn(client, 2)  # silence keeps the context
    reply = _sms(client, "yes", "SM1").find("Message")
    expected = render_intent(responder.catalog, "red_flag", "sms", DEFAULT_VARIABLES).text
    assert reply is not None and reply.text == expected


def _outbox(app: Flask) -> list[tuple[str, str, str]]:
    engine = app.extensions["calfline_store"].engine
    with engine.connect() as connection:
        rows = connection.execute(select(Escalation.channel, Escalation.intent, Escalation.body)
                                  .order_by(Escalation.id))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_red_flag_on_a_clinic_number_queues_one_alert_per_call(
    make_app: Callable[..., Flask], tmp_path: Path,
) -> None:
    clinics = write_clinics_file(tmp_path / "clinics.yaml", "http://127.0.0.1:9/alerts")
    app = make_app(TWILIO_AUTH_TOKEN=TOKEN, CLINICS_FILE=str(clinics))
    client = app.test_client()
    flag = {"To": RIVERSIDE_NUMBER, "SpeechResult": "i felt a pop in my calf"}
    _turn(client, 1, **flag)
    _turn(client, 1, **flag)  # Twilio's retry
    _turn(client, 2, To=RIVERSIDE_NUMBER, SpeechResult="my calf is swollen and hot")
    _turn(client, 3, To=RIVERSIDE_NUMBER, Digits="1")  # cramp: no alert
    assert _outbox(app) == [("voice", "red_flag", "i felt a pop in my calf")]
    _turn(client, 1, CallSid="CA" + "b" * 32, **flag)  # another call
    _turn(client, 1, CallSid="CA" + "c" * 32, SpeechResult="my calf is swollen and hot")
    assert len(_outbox(app)) == 2  # the second call's; LINE belongs to no clinic
    with app.extensions["calfline_store"].engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Escalation)) == 2


def test_concurrent_copies_of_a_turn_on_two_gunicorn_workers(database_url: str,
                                                             tmp_path: Path) -> None:
    hook, server = start_webhook()
    clinics = write_clinics_file(tmp_path / "clinics.yaml", hook.url)
    env = {"DATABASE_URL": database_url, "TWILIO_AUTH_TOKEN": TOKEN,
           "CALFLINE_HASH_SECRET": "voice-gunicorn-secret", "CALFLINE_CLINICS_FILE": str(clinics),
           "CALFLINE_ESCALATION_BACKOFF": "0.2"}
    flag = {"To": RIVERSIDE_NUMBER, "SpeechResult": "my calf is swollen hot and red"}
    copies = 8
    try:
        with gunicorn(env) as base:
            assert _live_turn(base, 1, CallSid="CAwarmup", To=RIVERSIDE_NUMBER)[0] == 200
            # A slow clinic webhook never holds up the caller: alerts go out in the background.
            hook.delay = 3.0
            status, body, elapsed = _live_turn(base, 1, CallSid="CAslow", **flag)
            assert status == 200 and elapsed < 1.5
            barrier = threading.Barrier(copies)
            results: list[tuple[int, bytes, float]] = []

            def fire() -> None:
                barrier.wait()
                results.append(_live_turn(base, 1, **flag))

            threads = [threading.Thread(target=fire) for _ in range(copies)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert [r[0] for r in results] == [200] * copies
            assert len({r[1] for r in results}) == 1
            assert ET.fromstring(results[0][1]).find("Gather") is not None
            alerts = hook.wait_for(2, timeout=30)  # the CAslow call's and this call's
            time.sleep(1.0)  # room for a wrong third alert
            assert len(hook.received) == len(alerts) == 2
            assert {json.loads(a["body"])["channel"] for a in alerts} == {"voice"}
    finally:
        server.shutdown()
        server.server_close()
    engine = open_engine(database_url)
    with engine.connect() as connection:
        inbound = connection.scalar(select(func.count()).select_from(Message).where(
            Message.twilio_sid == CALL_SID, Message.direction == "in"))
        replies = connection.scalar(select(func.count()).select_from(Message).where(
            Message.direction == "out"))
    engine.dispose()
    assert inbound == 1 and replies == 3  # warm-up, CAslow, and the turn sent eight times


def _live_turn(base: str, turn: int, **fields: str) -> tuple[int, bytes, float]:
    """POST one signed turn to a real server; return status, TwiML and seconds taken."""
    url = base + ANSWER.format(turn=turn)
    form = {"CallSid": CALL_SID, "From": CALLER, "To": LINE, **fields}
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(form).encode(),
        headers={"X-Twilio-Signature": sign(url, form),
                 "Content-Type": "application/x-www-form-urlencoded"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            status, body = exc.code, exc.read()
    return status, body, time.monotonic() - started
