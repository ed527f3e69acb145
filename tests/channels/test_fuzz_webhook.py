"""Whatever arrives at /sms gets valid TwiML or a 4xx with a reason, never a 500."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from responder.dialogue.respond import MAX_MESSAGE_CHARS
from responder.store.models import Conversation, Message

FIELDS = ["Body", "From", "To", "MessageSid", "SmsSid", "AccountSid", "NumMedia", "MediaUrl0"]
# Any text a form can carry (surrogates cannot be encoded, so no client could send them).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=2000)
VALUES = st.one_of(TEXT, st.lists(TEXT, min_size=1, max_size=3))
FORMS = st.dictionaries(st.one_of(st.sampled_from(FIELDS), TEXT), VALUES, max_size=8)
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
OPEN_LIMITS = {"RATELIMIT_PER_IP": "100000/minute", "RATELIMIT_PER_SENDER": "100000/minute"}


def _check(app: Flask, status: int, body: bytes) -> None:
    assert status < 500, body[:200]
    if status == 200:
        assert ET.fromstring(body).tag == "Response"
    else:
        assert status in (400, 405, 413, 415, 429) and body


def _check_stored(app: Flask) -> None:
    store = app.extensions["calfline_store"]
    with store.engine.connect() as connection:
        longest = connection.scalar(select(func.max(func.length(Message.body))))
        number = connection.scalar(select(func.max(func.length(Conversation.our_number))))
    assert (longest or 0) <= MAX_MESSAGE_CHARS and (number or 0) <= 64


def test_arbitrary_form_fields(make_app: Callable[..., Flask]) -> None:
    app = make_app(**OPEN_LIMITS)
    client = app.test_client()

    @FUZZ
    @given(form=FORMS)
    def post(form: dict[str, str | list[str]]) -> None:
        response = client.post("/sms", data=form)
        _check(app, response.status_code, response.data)

    post()
    _check_stored(app)


def test_arbitrary_bodies_and_content_types(make_app: Callable[..., Flask]) -> None:
    app = make_app(**OPEN_LIMITS)
    client = app.test_client()
    content_types = st.sampled_from([
        "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=latin-1",
        "multipart/form-data; boundary=xyz", "application/json", "text/plain", ""])

    @FUZZ
    @given(body=st.binary(max_size=5000), content_type=content_types)
    def post(body: bytes, content_type: str) -> None:
        response = client.post("/sms", data=body, content_type=content_type)
        _check(app, response.status_code, response.data)

    post()
    _check_stored(app)


def test_nul_bytes_long_and_repeated_fields_are_stored_safely(
    make_app: Callable[..., Flask]
) -> None:
    app = make_app()
    client = app.test_client()
    raw = (b"Body=%00calf%00cramp" + b"x" * 3000 + b"&Body=second&From=%00%2B1555%ff&To="
           + b"9" * 300 + b"&MessageSid=" + b"S" * 500)
    response = client.post("/sms", data=raw, content_type="application/x-www-form-urlencoded")
    _check(app, response.status_code, response.data)
    assert response.status_code == 200
    _check_stored(app)


def test_a_body_over_the_cap_gets_413(make_app: Callable[..., Flask]) -> None:
    app = make_app(MAX_CONTENT_LENGTH=1024)
    response = app.test_client().post("/sms", data={"Body": "x" * 2000})
    assert response.status_code == 413
    store = app.extensions["calfline_store"]
    with store.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Message)) == 0
