"""Only Twilio may call the webhooks: X-Twilio-Signature checked on every request.

Twilio signs the full URL it was configured with plus the sorted POST fields
(HMAC-SHA1 with the Auth Token; twilio.com/docs/usage/webhooks/webhooks-security).
Behind a proxy or tunnel the URL Flask sees differs (http vs https, host,
port), so the URL is rebuilt from CALFLINE_PUBLIC_BASE_URL, or from the
X-Forwarded-* headers of CALFLINE_TRUST_PROXY trusted hops (werkzeug ProxyFix).
Without TWILIO_AUTH_TOKEN only direct, unproxied requests from this machine
are answered (the README's curl example, tests), and start-up says so loudly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any, TypeVar

from flask import Flask, Request, Response, current_app, request
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.sansio.utils import get_current_url

from responder.channels.flask_context import this_app, this_request
from responder.channels.ratelimit import (
    check_sender_limit,
    count_failed_signature,
    is_resent_copy,
)
from responder.dialogue.respond import Responder
from responder.errors import ConfigError
from responder.store.conversation_store import idempotency_key

log = logging.getLogger("calfline.security")
F = TypeVar("F", bound=Callable[..., Any])
# A request that passed through a proxy or tunnel (ngrok adds these) is not "local".
FORWARDING_HEADERS = ("X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "X-Real-IP")
# At most this many request URLs (and keyed HMACs) are kept per process.
CACHED_URLS = 64


def install_security(app: Flask) -> None:
    """Trust the configured proxy hops and warn about an unsigned set-up."""
    hops = int(app.config["TRUST_PROXY"])
    if hops < 0:
        raise ConfigError(f"CALFLINE_TRUST_PROXY={hops}: must be 0 or a number of proxies")
    base = app.config["PUBLIC_BASE_URL"]
    if base and not base.startswith(("https://", "http://")):
        raise ConfigError(f"CALFLINE_PUBLIC_BASE_URL={base!r}: must start with https://")
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )
    if not app.config["TWILIO_AUTH_TOKEN"]:
        log.warning(
            "TWILIO_AUTH_TOKEN is not set: webhook signatures cannot be checked, so only "
            "unproxied requests from this machine (127.0.0.1) are answered. Set it before "
            "pointing a Twilio number here."
        )


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def signed_url(app: Flask | None = None, req: Request | None = None) -> str:
    """Return the URL Twilio signed: the public base URL, else what the request says.

    `app` and `req` default to the current ones; refusal() passes those it holds."""
    app = this_app() if app is None else app
    req = this_request() if req is None else req
    base = app.config["PUBLIC_BASE_URL"].rstrip("/")
    if not base:
        return _request_url(req)
    query = req.query_string.decode("latin-1")
    return f"{base}{req.path}" + (f"?{query}" if query else "")


def _request_url(req: Request) -> str:
    """request.url, worked out once per scheme, host, root and path (no query string).

    werkzeug rebuilds it on every access (quoting each part, then urlsplit and IRI
    decoding), about a fifth of the signature check, for what is the same few URLs
    on every webhook. A URL with a query string (a GET webhook: its From and Body
    are there) is never kept; the cache stays small whatever Host headers arrive.
    """
    if req.query_string:
        return req.url
    return _base_url(req.scheme, req.host, req.root_path, req.path)


# What werkzeug's request.url is without a query string, kept per distinct URL.
_base_url = lru_cache(maxsize=CACHED_URLS)(get_current_url)


def form_signature(token: str, url: str, form: MultiDict[str, str]) -> str:
    """X-Twilio-Signature of a form webhook, as RequestValidator.compute_signature makes it.

    Twilio's documented algorithm (twilio.com/docs/usage/webhooks/webhooks-security):
    the URL, then each field name followed by its value, sorted by name and then by
    value (repeated pairs once), HMAC-SHA1 with the Auth Token, in base64.
    compute_signature walks the fields through MultiDict.getall() and sets per name
    and starts from a fresh HMAC; here the token's HMAC is keyed once and copied.
    """
    pairs = sorted(set(form.items(multi=True)))
    mac = _keyed(token).copy()
    mac.update((url + "".join(name + value for name, value in pairs)).encode("utf-8"))
    return base64.b64encode(mac.digest()).decode("ascii")


@lru_cache(maxsize=CACHED_URLS)
def _keyed(token: str) -> Any:
    """HMAC-SHA1 keyed with this Auth Token, made once per token (tests use several)."""
    return hmac.new(token.encode("utf-8"), digestmod=hashlib.sha1)


def signature_matches(token: str, url: str, params: Any, signature: str) -> bool:
    """RequestValidator.validate, with one HMAC instead of two for a genuine form webhook.

    validate() accepts the signature of the URL with its port and of the URL without
    it (Twilio signs either); the URL as received is one of the two, so checking it
    first accepts nothing validate() would refuse. The rest goes to validate().
    """
    if not isinstance(params, str) and hmac.compare_digest(
            form_signature(token, url, params).encode(), signature.encode()):
        return True
    return bool(RequestValidator(token).validate(url, params, signature))


def refusal() -> str | None:
    """Return why this request is not from Twilio, or None when it is acceptable."""
    app, req = this_app(), this_request()
    token = app.config["TWILIO_AUTH_TOKEN"]
    if not token:
        environ = req.environ.get("werkzeug.proxy_fix.orig", req.environ)
        local = _is_loopback(environ.get("REMOTE_ADDR"))
        if local and not any(h in req.headers for h in FORWARDING_HEADERS):
            return None
        return "TWILIO_AUTH_TOKEN is not configured; only local requests are answered"
    signature = req.headers.get("X-Twilio-Signature", "")
    if not signature:
        return "missing X-Twilio-Signature"
    # JSON-bodied webhooks sign a bodySHA256 query parameter instead of form fields.
    params: Any = req.get_data(as_text=True) if "bodySHA256" in req.args else req.form
    url = signed_url(app, req)
    if signature_matches(token, url, params, signature):
        return None
    log.warning("bad X-Twilio-Signature for %s (check CALFLINE_PUBLIC_BASE_URL or "
                "CALFLINE_TRUST_PROXY)", url)
    return "X-Twilio-Signature does not match this request"


def webhook_key() -> str | None:
    """What makes this webhook one delivery: re-sent copies share it (see ratelimit.py)."""
    req = this_request()
    form = req.form
    token = req.headers.get("I-Twilio-Idempotency-Token")
    sid = form.get("MessageSid") or form.get("SmsSid")
    # Asked for only when needed: an absent field costs werkzeug a BadRequestKeyError.
    return (idempotency_key("token", req.path, token)
            or idempotency_key("message", req.path, sid)
            or idempotency_key("call", req.path, form.get("CallSid"),
                               req.query_string.decode()))


def _may_be_urgent() -> bool:
    """True if the message is (or may be) a red flag: it gets through any sender limit."""
    text = request.form.get("Body") or request.form.get("SpeechResult") or ""
    if not text.strip():
        return False
    responder: Responder = current_app.extensions["calfline"]
    answer = responder.answer(text, "voice" if "SpeechResult" in request.form else "sms")
    return answer.reply.urgent or answer.match.check


def twilio_webhook(view: F) -> F:
    """Refuse what Twilio did not sign (403, 429 past the IP limit) and limit each sender."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        reason = refusal()
        if reason is not None:
            # Only failures count against the IP: a forger cannot use up Twilio's allowance.
            limited = count_failed_signature()
            if limited is not None:
                return limited
            return Response(f"Forbidden: {reason}\n", 403, mimetype="text/plain")
        if not is_resent_copy(webhook_key()):  # a copy is answered again, never counted
            store = this_app().extensions.get("calfline_store")
            sender = this_request().form.get("From", "")
            sender_id = store.hasher.key(sender).hash if store is not None else sender
            limited = check_sender_limit(sender_id)
            if limited is not None and not _may_be_urgent():
                return limited
        return view(*args, **kwargs)

    return checked  # type: ignore[return-value]
