"""The session signer kept per key still signs, verifies and follows a key change."""

from __future__ import annotations

from flask import Flask, request, session

from responder.frontdesk.session_cookie import CachedSignerSessionInterface


def session_app() -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "first-key-" + "x" * 22
    app.session_interface = CachedSignerSessionInterface()

    @app.post("/in")
    def sign_in() -> str:
        session["user"] = "ana"
        return "ok"

    @app.get("/who")
    def who() -> str:
        return str(session.get("user", "nobody"))

    return app


def test_a_signed_session_round_trips_and_a_new_key_refuses_the_old_cookie() -> None:
    app = session_app()
    client = app.test_client()
    client.post("/in")
    assert client.get("/who").text == "ana"
    assert client.get("/who").text == "ana"  # the kept signer verifies it again
    app.config["SECRET_KEY"] = "second-key-" + "y" * 21
    assert client.get("/who").text == "nobody"  # not the first key's signer any more
    app.config["SECRET_KEY_FALLBACKS"] = ["first-key-" + "x" * 22]
    assert client.get("/who").text == "ana"  # the old key as a fallback verifies it


def test_the_signer_is_built_once_per_key() -> None:
    app = session_app()
    interface = app.session_interface
    assert isinstance(interface, CachedSignerSessionInterface)
    first = interface.get_signing_serializer(app)
    assert first is not None and interface.get_signing_serializer(app) is first
    app.config["SECRET_KEY"] = "second-key-" + "y" * 21
    assert interface.get_signing_serializer(app) is not first


def test_no_cookie_header_gets_a_new_session_and_without_a_key_none() -> None:
    app = session_app()
    fresh = app.test_client()
    assert fresh.get("/who").text == "nobody"
    fresh.post("/in")  # the new session it got is the one that gets signed and sent
    assert fresh.get("/who").text == "ana"
    app.config["SECRET_KEY"] = None
    with app.test_request_context("/who"):
        assert app.session_interface.open_session(app, request) is None  # as Flask's own
