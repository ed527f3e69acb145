"""The objects behind Flask's proxies: the very request, app and g of the request."""

from __future__ import annotations

import pytest
from flask import Flask, Request, current_app, g, request

from responder.channels.flask_context import request_globals, this_app, this_request


def test_they_are_the_objects_the_proxies_stand_for(app: Flask) -> None:
    with app.test_request_context("/sms", method="POST", data={"Body": "calf cramp"}):
        req = this_request()
        assert type(req) is app.request_class and isinstance(req, Request)
        assert req is request._get_current_object()  # type: ignore[attr-defined]
        assert req.form["Body"] == "calf cramp"
        assert this_app() is app and type(this_app()) is Flask
        request_globals().calfline_intent = "cramp_now"
        assert g.calfline_intent == "cramp_now"
    with app.test_request_context("/sms"):  # a new request has its own
        assert this_request() is not req
        assert "calfline_intent" not in request_globals()


def test_outside_a_request_they_refuse_as_the_proxies_do() -> None:
    with pytest.raises(RuntimeError):
        this_request()
    with pytest.raises(RuntimeError):
        this_app()
    with pytest.raises(RuntimeError):
        current_app.config  # noqa: B018 - the proxy's own refusal, for comparison
