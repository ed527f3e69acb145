"""Flask's signed-cookie session, with its signer built once per key instead of per request.

Flask's SecureCookieSessionInterface builds an itsdangerous serializer in every
open_session() (about 14 us: it test-dumps a value to learn the serializer's
type), also for the Twilio webhooks, which never carry a session cookie. The
serializer depends only on the secret key, its fallbacks and the interface's
fixed settings, so it is kept per key: a changed SECRET_KEY (tests) gets a new one.
A request with no Cookie header at all (every Twilio webhook) gets its new empty
session without werkzeug parsing the cookies first.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class CachedSignerSessionInterface(SecureCookieSessionInterface):
    """SecureCookieSessionInterface whose serializer is made once per secret key."""

    def __init__(self) -> None:
        self._signers: dict[tuple[Any, ...], URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """The parent's serializer for the app's current keys, built on first use."""
        key = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        signer = self._signers.get(key)
        if signer is None:
            signer = super().get_signing_serializer(app)
            if len(self._signers) > 8:  # only tests change keys; stay bounded anyway
                self._signers.clear()
            self._signers[key] = signer
        return signer

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """The parent's session; without a Cookie header, the new empty one at once."""
        if "HTTP_COOKIE" not in request.environ and self.get_signing_serializer(app) is not None:
            return self.session_class()
        return super().open_session(app, request)
