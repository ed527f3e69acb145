"""The objects behind Flask's context proxies, for code that reads them many times.

Each `request.form`, `current_app.config` or `g.x` goes through werkzeug's
LocalProxy: a context-variable look-up and a bound method call on every
access, about 1 us each on the bench's machine, and a signed /sms made some
forty of them in our code. A function that reads the request or the app
several times binds the object once (LocalProxy's `_get_current_object()`,
werkzeug.palletsprojects.com/en/stable/local/).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, current_app, g, request


def this_request() -> Request:
    """The request being handled (outside a request context: RuntimeError, as the proxy)."""
    return request._get_current_object()  # type: ignore[attr-defined, no-any-return]


def this_app() -> Flask:
    """The app handling the request."""
    return current_app._get_current_object()  # type: ignore[attr-defined, no-any-return]


def request_globals() -> Any:
    """Flask's `g` for this request (an _AppCtxGlobals)."""
    return g._get_current_object()
