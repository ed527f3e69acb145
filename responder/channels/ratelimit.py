"""Rate limits per source IP and per sender: a moving window, in this process or in Redis.

The IP limit is checked before the signature, so a flood of forged requests
is cut off cheaply; the sender limit only after it, so nobody can exhaust a
real patient's allowance by forging their `From`. Senders are keyed by their
HMAC, so no phone number reaches Redis.

Both stores count a moving window (a burst cannot double up across a window
boundary). `memory://` (counters per worker) keeps each key's last N hit times
for an N-per-period limit, swept inline: no timer thread, unlike `limits`'
memory storage, which woke every 10 ms in every worker to scan every key.
Any other CALFLINE_RATELIMIT_STORAGE_URI (`redis://host:6379`) goes through
`limits`, the library under flask-limiter, and is shared by all workers.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from typing import Protocol

from flask import Flask, Response, current_app, request
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from responder.errors import ConfigError

log = logging.getLogger("calfline.ratelimit")
EXTENSION = "calfline_ratelimits"
MEMORY_URI = "memory://"
SWEEP_SECONDS = 60.0  # how often the in-memory counter forgets idle keys


class RateCounter(Protocol):
    """Counts one hit; returns None when allowed, else seconds until the next is."""

    def hit(self, item: RateLimitItem, scope: str, identity: str) -> float | None: ...


class MemoryCounter:
    """An exact moving window per key in this process: the last `amount` hit times."""

    def __init__(self, sweep_seconds: float = SWEEP_SECONDS) -> None:
        self._hits: dict[tuple[int, int, str, str], deque[float]] = {}
        self._lock = threading.Lock()
        self._sweep_seconds = sweep_seconds
        self._sweep_at = time.monotonic() + sweep_seconds

    def hit(self, item: RateLimitItem, scope: str, identity: str) -> float | None:
        """Allowed while fewer than `amount` hits fall inside the last period."""
        window, now = item.get_expiry(), time.monotonic()
        key = (item.amount, window, scope, identity)
        with self._lock:
            if now >= self._sweep_at:
                self._sweep(now)
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque(maxlen=item.amount)
            if len(hits) == item.amount and now - hits[0] < window:
                return hits[0] + window - now  # the oldest hit leaves the window then
            hits.append(now)
            return None

    def _sweep(self, now: float) -> None:
        idle = [key for key, hits in self._hits.items() if not hits or now - hits[-1] >= key[1]]
        for key in idle:
            del self._hits[key]
        self._sweep_at = now + self._sweep_seconds

    def __len__(self) -> int:
        return len(self._hits)


class SharedCounter:
    """The moving window in a `limits` storage (Redis), shared by workers and servers."""

    def __init__(self, uri: str, prefix: str) -> None:
        self.limiter = MovingWindowRateLimiter(storage_from_string(uri))
        self.prefix = prefix

    def hit(self, item: RateLimitItem, scope: str, identity: str) -> float | None:
        """Count a hit in the shared storage; on refusal say when the window frees up."""
        if self.limiter.hit(item, self.prefix, scope, identity):
            return None
        stats = self.limiter.get_window_stats(item, self.prefix, scope, identity)
        return stats.reset_time - time.time()


class WebhookLimits:
    """The parsed limits and the counter that counts them."""

    def __init__(self, counter: RateCounter, per_ip: list[RateLimitItem],
                 per_sender: list[RateLimitItem]) -> None:
        self.counter = counter
        self.per_ip = per_ip
        self.per_sender = per_sender


def _parse(name: str, value: str) -> list[RateLimitItem]:
    try:
        return list(parse_many(value)) if value.strip() else []
    except ValueError as exc:
        raise ConfigError(f"{name}={value!r}: not a rate limit like '30/minute' ({exc})") from None


def install_rate_limits(app: Flask) -> None:
    """Create the app's counter from the RATELIMIT_* settings."""
    uri = str(app.config["RATELIMIT_STORAGE_URI"]).strip() or MEMORY_URI
    counter: RateCounter
    if uri == MEMORY_URI:
        counter = MemoryCounter()
    else:
        # The prefix keeps several apps (or test runs) apart in one Redis.
        counter = SharedCounter(uri, "calfline" + app.config.get("RATELIMIT_KEY_PREFIX", ""))
    app.extensions[EXTENSION] = WebhookLimits(
        counter,
        _parse("CALFLINE_RATELIMIT_PER_IP", app.config["RATELIMIT_PER_IP"]),
        _parse("CALFLINE_RATELIMIT_PER_SENDER", app.config["RATELIMIT_PER_SENDER"]),
    )


def _too_many(items: list[RateLimitItem], scope: str, identity: str) -> Response | None:
    limits: WebhookLimits = current_app.extensions[EXTENSION]
    for item in items:
        try:
            wait = limits.counter.hit(item, scope, identity)
        except Exception:  # noqa: BLE001 - a dead Redis must not silence the line
            log.exception("rate-limit storage failed; letting the request through")
            return None
        if wait is not None:
            response = Response(f"Too Many Requests: more than {item} per {scope}\n", 429,
                                mimetype="text/plain")
            response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
            return response
    return None


def check_ip_limit() -> Response | None:
    """Return a 429 response when this source IP sent too many requests."""
    limits: WebhookLimits = current_app.extensions[EXTENSION]
    if not limits.per_ip:
        return None
    return _too_many(limits.per_ip, "ip", request.remote_addr or "unknown")


def check_sender_limit(sender_hash: str) -> Response | None:
    """Return a 429 response when this sender (hashed `From`) sent too many messages."""
    limits: WebhookLimits = current_app.extensions[EXTENSION]
    return _too_many(limits.per_sender, "sender", sender_hash)
