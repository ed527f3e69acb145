"""Rate limits per source IP and per sender (flask-limiter's storage: memory or Redis).

The IP limit is checked before the signature, so a flood of forged requests
is cut off cheaply; the sender limit only after it, so nobody can exhaust a
real patient's allowance by forging their `From`. Senders are keyed by their
HMAC, so no phone number reaches Redis.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many

from responder.errors import ConfigError

log = logging.getLogger("calfline.ratelimit")
EXTENSION = "calfline_ratelimits"


class WebhookLimits:
    """The parsed limits and the limiter that counts them."""

    def __init__(self, limiter: Limiter, per_ip: list[RateLimitItem],
                 per_sender: list[RateLimitItem], prefix: str = "calfline") -> None:
        self.limiter = limiter
        self.prefix = prefix
        self.per_ip = per_ip
        self.per_sender = per_sender


def _parse(name: str, value: str) -> list[RateLimitItem]:
    try:
        return list(parse_many(value)) if value.strip() else []
    except ValueError as exc:
        raise ConfigError(f"{name}={value!r}: not a rate limit like '30/minute' ({exc})") from None


def install_rate_limits(app: Flask) -> None:
    """Create the app's limiter from RATELIMIT_* settings."""
    # Moving window: a burst cannot double up across a window boundary.
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)
    limiter = Limiter(get_remote_address, app=app, default_limits=[])
    app.extensions[EXTENSION] = WebhookLimits(
        limiter,
        _parse("CALFLINE_RATELIMIT_PER_IP", app.config["RATELIMIT_PER_IP"]),
        _parse("CALFLINE_RATELIMIT_PER_SENDER", app.config["RATELIMIT_PER_SENDER"]),
        # Keeps several apps (or test runs) apart in one Redis.
        "calfline" + app.config.get("RATELIMIT_KEY_PREFIX", ""),
    )


def _too_many(items: list[RateLimitItem], scope: str, identity: str) -> Response | None:
    limits: WebhookLimits = current_app.extensions[EXTENSION]
    for item in items:
        try:
            allowed = limits.limiter.limiter.hit(item, limits.prefix, scope, identity)
        except Exception:  # noqa: BLE001 - a dead Redis must not silence the line
            log.exception("rate-limit storage failed; letting the request through")
            return None
        if not allowed:
            stats = limits.limiter.limiter.get_window_stats(item, limits.prefix, scope, identity)
            retry = max(1, math.ceil(stats.reset_time - time.time()))
            response = Response(f"Too Many Requests: more than {item} per {scope}\n", 429,
                                mimetype="text/plain")
            response.headers["Retry-After"] = str(retry)
            return response
    return None


def check_ip_limit() -> Response | None:
    """Return a 429 response when this source IP sent too many requests."""
    limits: WebhookLimits = current_app.extensions[EXTENSION]
    return _too_many(limits.per_ip, "ip", request.remote_addr or "unknown")


def check_sender_limit(sender_hash: str) -> Response | None:
    """Return a 429 response when this sender (hashed `From`) sent too many messages."""
    limits: WebhookLimits = current_app.extensions[EXTENSION]
    return _too_many(limits.per_sender, "sender", sender_hash)
