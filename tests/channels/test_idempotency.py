"""A webhook Twilio re-sends gets the same reply and leaves one record, even concurrently."""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable

from flask import Flask
from sqlalchemy import func, select

from responder.store.database import open_engine
from responder.store.models import Message
from tests.servers import gunicorn
from tests.twilio_signing import TOKEN, count_messages, sign, signed_post

FORM = {"From": "+15556660000", "To": "+15550001000", "Body": "calf cramp right now",
        "MessageSid": "SM" + "d" * 32, "AccountSid": "AC" + "0" * 32}


def test_same_message_sid_twice_gives_one_record(make_app: Callable[..., Flask]) -> None:
    client = make_app(TWILIO_AUTH_TOKEN=TOKEN).test_client()
    first = signed_post(client, FORM)
    # A retry can carry a different body only if forged; the MessageSid decides.
    again = signed_post(client, FORM, headers={"I-Twilio-Idempotency-Token": "retry-1"})
    assert first.status_code == again.status_code == 200
    assert first.data == again.data
    assert count_messages(client) == 2


def test_idempotency_token_without_message_sid(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    form = {k: v for k, v in FORM.items() if k != "MessageSid"}
    headers = {"I-Twilio-Idempotency-Token": "abc-123"}
    first = client.post("/sms", data=form, headers=headers)
    again = client.post("/sms", data=form, headers=headers)
    assert first.data == again.data and count_messages(client) == 2
    client.post("/sms", data=form)  # no identifiers at all: a new message each time
    assert count_messages(client) == 4


def test_a_retry_after_stop_repeats_the_first_reply(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    first = client.post("/sms", data=FORM)
    client.post("/sms", data={**FORM, "Body": "STOP", "MessageSid": "SM" + "e" * 32})
    assert client.post("/sms", data=FORM).data == first.data


def _post(base: str, form: dict[str, str]) -> tuple[int, bytes]:
    url = base + "/sms"
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(form).encode(),
        headers={"X-Twilio-Signature": sign(url, form),
                 "Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_concurrent_duplicates_on_two_gunicorn_workers(database_url: str) -> None:
    env = {"DATABASE_URL": database_url, "TWILIO_AUTH_TOKEN": TOKEN,
           "CALFLINE_HASH_SECRET": "gunicorn-test-secret"}
    copies = 8
    with gunicorn(env) as base:
        assert _post(base, {**FORM, "MessageSid": "SMwarmup"})[0] == 200
        barrier = threading.Barrier(copies)
        results: list[tuple[int, bytes]] = []

        def fire() -> None:
            barrier.wait()
            results.append(_post(base, FORM))

        threads = [threading.Thread(target=fire) for _ in range(copies)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [status for status, _ in results] == [200] * copies
        assert len({body for _, body in results}) == 1
        assert ET.fromstring(results[0][1]).find("Message") is not None
        stop = {**FORM, "Body": "STOP", "MessageSid": "SMstop"}
        assert ET.fromstring(_post(base, stop)[1]).find("Message") is None
    engine = open_engine(database_url)
    with engine.connect() as connection:
        inbound = connection.scalar(select(func.count()).select_from(Message).where(
            Message.twilio_sid == FORM["MessageSid"], Message.direction == "in"))
        total = connection.scalar(select(func.count()).select_from(Message))
    engine.dispose()
    assert inbound == 1 and total == 6  # warm-up, the duplicated one, STOP: each with reply
    # A restarted server (a new process on the same database) keeps the opt-out.
    with gunicorn(env) as base:
        later = {**FORM, "Body": "my calves are tight", "MessageSid": "SMlater"}
        status, body = _post(base, later)
        assert status == 200 and ET.fromstring(body).find("Message") is None
        start = {**FORM, "Body": "START", "MessageSid": "SMstart"}
        assert ET.fromstring(_post(base, start)[1]).find("Message") is not None
