"""FormRequest reads a url-encoded body as werkzeug's own Request does, just directly."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask, Request
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge
from werkzeug.test import EnvironBuilder

from responder.web.form_body import URLENCODED, FormRequest

LIMIT = 4096
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
# Raw bodies a form parser can meet: escapes good and bad, "+", empty pairs, not UTF-8.
PIECES = st.sampled_from([b"a", b"=", b"&", b"+", b"%", b"%2", b"%41", b"%zz", b"%C3%A9",
                          b"\xc3\xa9", b"\xff", b"%FF", b"%C3", b";", b"Body", b"From",
                          b"%26", b"%3D", b" "])
RAW = st.lists(PIECES, max_size=40).map(b"".join)


def _environ(body: bytes, content_type: str = URLENCODED,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    environ = EnvironBuilder(path="/sms", method="POST", data=body,
                             content_type=content_type).get_environ()
    return {**environ, **(extra or {})}


def _form(request_class: type[Request], environ: dict[str, Any]) -> list[tuple[str, str]]:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = LIMIT
    body = environ["wsgi.input"].getvalue()  # each reader gets its own copy
    with app.request_context({**environ, "wsgi.input": io.BytesIO(body)}):
        request = request_class({**environ, "wsgi.input": io.BytesIO(body)})
        return list(request.form.items(multi=True))


def _outcome(request_class: type[Request], environ: dict[str, Any]) -> Any:
    try:
        return _form(request_class, environ)
    except HTTPException as error:
        return type(error)


def test_the_direct_read_is_taken_for_a_twilio_form() -> None:
    body = urlencode({"Body": "calf cramp", "From": "+15550001111"}).encode()
    app = Flask(__name__)
    with app.request_context(_environ(body)):
        request = FormRequest(_environ(body))
        assert request._direct_form_size() == len(body)
        assert request.form["Body"] == "calf cramp"
        assert request.get_data() == b""  # consumed, as werkzeug leaves it


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(TEXT, TEXT), max_size=8))
def test_forms_read_as_werkzeug_reads_them(pairs: list[tuple[str, str]]) -> None:
    environ = _environ(urlencode(pairs).encode())
    expected = list(MultiDict(pairs).items(multi=True))  # grouped by name, in order
    assert _form(FormRequest, environ) == _form(Request, environ) == expected


@settings(max_examples=300, deadline=None)
@given(RAW)
def test_raw_bodies_read_as_werkzeug_reads_them(body: bytes) -> None:
    assert _form(FormRequest, _environ(body)) == _form(Request, _environ(body))


@pytest.mark.parametrize("case", ["short body", "over the limit", "charset parameter",
                                  "json", "no length", "odd length"])
def test_other_requests_are_answered_as_werkzeug_answers_them(case: str) -> None:
    body = b"Body=hi&From=%2B1555"
    environ = {
        "short body": lambda: _environ(body, extra={"CONTENT_LENGTH": str(len(body) + 5)}),
        "over the limit": lambda: _environ(b"Body=" + b"x" * LIMIT),
        "charset parameter": lambda: _environ(body, f"{URLENCODED}; charset=utf-8"),
        "json": lambda: _environ(b'{"Body": "hi"}', "application/json"),
        "no length": lambda: _environ(
            body, extra={"CONTENT_LENGTH": "", "wsgi.input_terminated": True}),
        "odd length": lambda: _environ(body, extra={"CONTENT_LENGTH": "+19"}),
    }[case]()
    expected = {"short body": ClientDisconnected, "over the limit": RequestEntityTooLarge}
    assert _outcome(FormRequest, environ) == _outcome(Request, environ)
    if case in expected:
        assert _outcome(FormRequest, environ) is expected[case]


def test_a_stream_read_first_leaves_the_form_to_werkzeug() -> None:
    body = b"Body=hi+there&NumMedia=0"
    app = Flask(__name__)
    with app.request_context(_environ(body)):
        request = FormRequest(_environ(body))
        assert request.get_data(cache=True) == body
        assert request._direct_form_size() is None
        assert request.form.to_dict() == {"Body": "hi there", "NumMedia": "0"}
