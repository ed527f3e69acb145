"""Rate limits that cannot silence genuine traffic: per sender for Twilio, per IP for strangers.

signatures.twilio_webhook checks X-Twilio-Signature first, then:

- a request that fails it counts against its source IP (CALFLINE_RATELIMIT_PER_IP)
  and gets 429 instead of 403 past the limit. Genuine webhooks never count
  there: all of Twilio's come from a few Twilio addresses, so a limit counted
  before the check let 300 forgeries from one of them silence real patients;
- a signed request counts against its sender (CALFLINE_RATELIMIT_PER_SENDER, the
  hashed `From`), except a re-sent copy (same MessageSid, CallSid and turn, or
  I-Twilio-Idempotency-Token: Twilio re-sends when an answer was slow), which is
  answered again and never refused; and a sender past the limit still gets the
  urgent reply to a red flag, or the check question to a suspected one;
- a failed console login and an API request with a bad key (401) count against
  the IP too; past the limit those routes answer 429 before checking anything.

Counters: `memory://` (counters per worker) keeps each key's last N hit times for
an N-per-period limit, swept inline: no timer thread, unlike `limits`' memory
storage, which woke every 10 ms in every worker to scan every key. Any other
CALFLINE_RATELIMIT_STORAGE_URI (`redis://host:6379`) goes through `limits` and is
shared by all workers; each Redis call waits at most CALFLINE_REDIS_TIMEOUT, with
no retries. While Redis fails, counting goes on in this worker's memory (one
warning), Redis is tried again every few seconds, and one line says when it is
back and how many hits were counted without it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from typing import Any, Protocol

from flask import Flask, Request, Response, current_app, jsonify, request
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from responder.channels.flask_context import this_request
from responder.errors import ConfigError

log = logging.getLogger("calfline.ratelimit")
EXTENSION = "calfline_ratelimits"
MEMORY_URI = "memory://"
SWEEP_SECONDS = 60.0  # how often the in-memory counter forgets idle keys
REDIS_RETRY_SECONDS = 2.0  # how long a failed Redis is left alone before the next try
# How long a webhook's key is remembered to spot a re-sent copy: Twilio re-sends
# within seconds to minutes; at least the sender window, at most an hour of keys.
COPY_MEMORY_SECONDS = (60, 3600)
# Routes without a Twilio signature whose failures (401) count against the IP.
UNAUTHENTICATED = {"console.login": "POST", "api.create_reply": "POST"}


class RateCounter(Protocol):
    """Counts hits in a moving window; remembers keys for a while."""

    def hit(self, item: RateLimitItem, scope: str, identity: str) -> float | None:
        """Count one hit; None when allowed, else seconds until the next one is."""

    def peek(self, item: RateLimitItem, scope: str, identity: str) -> float | None:
        """Like hit() without counting it."""

    def remember(self, key: str, seconds: int) -> bool:
        """Remember `key` for `seconds`; True if it was remembered already."""


class MemoryCounter:
    """An exact moving window per key in this process: the last `amount` hit times."""

    def __init__(self, sweep_seconds: float = SWEEP_SECONDS) -> None:
        self._hits: dict[tuple[int, int, str, str], deque[float]] = {}
        self._keys: dict[str, float] = {}  # remembered key -> when it is forgotten
        self._lock = threading.Lock()
        self._sweep_seconds = sweep_seconds
        self._sweep_at = time.monotonic() + sweep_seconds

    def hit(self, item: RateLimitItem, scope: str, identity: str) -> float | None:
        """Allowed while fewer than `amount` hits fall inside the last period."""
        return self._hit(item, scope, identity, count=True)

    def peek(self, item: RateLimitItem, scope: str, identity: str) -> float | None:
        """Would a hit be refused now, and for how long."""
        return self._hit(item, scope, identity, count=False)

    def _hit(self, item: RateLimitItem, scope: str, identity: str,
             count: bool) -> float | None:
        window, now = item.get_expiry(), time.monotonic()
        key = (item.amount, window, scope, identity)
        with self._lock:
            if now >= self._sweep_at:
                self._sweep(now)
            hits = self._hits.get(key)
            if hits is None:
                if not count:
                    return None
                hits = self._hits[key] = deque(maxlen=item.amount)
            if len(hits) == item.amount and now - hits[0] < window:
                return hits[0] + window - now  # the oldest hit leaves the window then
            if count:
                hits.append(now)
            return None

    def remember(self, key: str, seconds: int) -> bool:
        """Remember `key` for `seconds`; True if it was remembered already."""
        now = time.monotonic()
        with self._lock:
            if self._keys.get(key, 0.0) > now:
                return True
            self._keys[key] = now + seconds
            return False

    def _sweep(self, now: float) -> None:
        idle = [key for key, hits in self._hits.items() if not hits or now - hits[-1] >= key[1]]
        for key in idle:
            del self._hits[key]
        for name in [name for name, until in self._keys.items() if until <= now]:
            del self._keys[name]
        self._sweep_at = now + self._sweep_seconds

    def __len__(self) -> int:
        return len(self._hits)


class SharedCounter:
    """The moving window in a `limits` storage (Redis), shared by workers and servers."""

    def __init__(self, uri: str, prefix: str, timeout: float) -> None:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # redis-py retries 3 times with up to 10 s of backoff by default: that alone
        # would overrun Twilio's 15 s. One try, bounded by the timeout, then fall back.
        options: dict[str, Any] = {"socket_timeout": timeout,
                                   "socket_connect_timeout": timeout,
                                   "retry": Retry(NoBackoff(), 0)}
        storage = storage_from_string(uri, **options)
        self.limiter = MovingWindowRateLimiter(storage)
        self.redis: Any = getattr(storage, "storage", None)  # the redis client itself
        self.prefix = prefix

    def hit(self, item: RateLimitItem, scope: str, identity: str) -> float | None:
        """Count a hit in the shared storage; on refusal say when the window frees up."""
        if self.limiter.hit(item, self.prefix, scope, identity):
            return None
        stats = self.limiter.get_window_stats(item, self.prefix, scope, identity)
        return stats.reset_time - time.time()

    def peek(self, item: RateLimitItem, scope: str, identity: str) -> float | None:
        """Would a hit be refused now, and for how long."""
        if self.limiter.test(item, self.prefix, scope, identity):
            return None
        stats = self.limiter.get_window_stats(item, self.prefix, scope, identity)
        return stats.reset_time - time.time()

    def remember(self, key: str, seconds: int) -> bool:
        """SET NX with an expiry: one Redis round trip."""
        if self.redis is None:
            return False
        return not self.redis.set(f"{self.prefix}:copy:{key}", b"1", nx=True, ex=seconds)


class FailoverCounter:
    """Redis while it answers, this process's memory while it does not."""

    def __init__(self, shared: SharedCounter) -> None:
        self.shared = shared
        self.memory = MemoryCounter()
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._counted_in_memory = 0

    def _use(self, call: str, *args: Any) -> Any:
        now = time.monotonic()
        if self._down_since is None or now >= self._retry_at:
            try:
                result = getattr(self.shared, call)(*args)
            except Exception as exc:  # noqa: BLE001 - any Redis failure: count in memory
                self._failed(exc)
            else:
                self._recovered()
                return result
        with self._lock:
            self._counted_in_memory += 1
        return getattr(self.memory, call)(*args)

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            self._retry_at = time.monotonic() + REDIS_RETRY_SECONDS
            if self._down_since is not None:
                return
            self._down_since, self._counted_in_memory = time.monotonic(), 0
        log.warning("Redis unavailable: counting rate limits in this worker's memory",
                    extra={"dependency": "redis", "error": f"{type(exc).__name__}: {exc}"[:200]})

    def _recovered(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            since, counted = self._down_since, self._counted_in_memory
            if since is None:
                return
            self._down_since = None
        log.warning("Redis back", extra={"dependency": "redis",
                                         "down_seconds": round(time.monotonic() - since, 3),
                                         "calls_in_memory": counted})

    def hit(self, item: RateLimitItem, scope: str, identity: str) -> float | None:
        """Count one hit in Redis, or in memory while Redis fails."""
        result: float | None = self._use("hit", item, scope, identity)
        return result

    def peek(self, item: RateLimitItem, scope: str, identity: str) -> float | None:
        """Would a hit be refused now."""
        result: float | None = self._use("peek", item, scope, identity)
        return result

    def remember(self, key: str, seconds: int) -> bool:
        """Remember a webhook's key in Redis, or in memory while Redis fails."""
        return bool(self._use("remember", key, seconds))


class WebhookLimits:
    """The parsed limits and the counter that counts them."""

    def __init__(self, counter: RateCounter, per_ip: list[RateLimitItem],
                 per_sender: list[RateLimitItem]) -> None:
        self.counter = counter
        self.per_ip = per_ip
        self.per_sender = per_sender
        longest = max((item.get_expiry() for item in per_sender), default=0)
        low, high = COPY_MEMORY_SECONDS
        self.copy_seconds = int(min(max(longest, low), high))


def _parse(name: str, value: str) -> list[RateLimitItem]:
    try:
        return list(parse_many(value)) if value.strip() else []
    except ValueError as exc:
        raise ConfigError(f"{name}={value!r}: not a rate limit like '30/minute' ({exc})") from None


def install_rate_limits(app: Flask) -> None:
    """Create the app's counter from the RATELIMIT_* settings; guard the unsigned routes."""
    uri = str(app.config["RATELIMIT_STORAGE_URI"]).strip() or MEMORY_URI
    counter: RateCounter
    if uri == MEMORY_URI:
        counter = MemoryCounter()
    else:
        # The prefix keeps several apps (or test runs) apart in one Redis.
        counter = FailoverCounter(SharedCounter(
            uri, "calfline" + app.config.get("RATELIMIT_KEY_PREFIX", ""),
            float(app.config["REDIS_TIMEOUT"])))
    app.extensions[EXTENSION] = WebhookLimits(
        counter,
        _parse("CALFLINE_RATELIMIT_PER_IP", app.config["RATELIMIT_PER_IP"]),
        _parse("CALFLINE_RATELIMIT_PER_SENDER", app.config["RATELIMIT_PER_SENDER"]),
    )
    app.before_request(_refuse_a_flooding_stranger)
    app.after_request(_count_a_failed_login)


def _too_many(limits: WebhookLimits, items: list[RateLimitItem], scope: str, identity: str,
              count: bool = True) -> Response | None:
    for item in items:
        wait = (limits.counter.hit if count else limits.counter.peek)(item, scope, identity)
        if wait is not None:
            return _refusal(f"more than {item} per {scope}", wait)
    return None


def _refusal(why: str, wait: float) -> Response:
    retry = str(max(1, math.ceil(wait)))
    if request.path.startswith("/api/"):  # the API's one error shape
        response = jsonify(error={"code": "too_many_requests", "message": why})
        response.status_code = 429
    else:
        response = Response(f"Too Many Requests: {why}\n", 429, mimetype="text/plain")
    response.headers["Retry-After"] = retry
    return response


def _client_address(req: Request | None = None) -> str:
    return (this_request() if req is None else req).remote_addr or "unknown"


def count_failed_signature() -> Response | None:
    """Count a request that failed the signature against its IP; 429 past the limit."""
    limits: WebhookLimits = current_app.extensions[EXTENSION]
    if not limits.per_ip:
        return None
    return _too_many(limits, limits.per_ip, "ip", _client_address())


def is_resent_copy(key: str | None) -> bool:
    """True if this webhook's key was seen lately: a copy Twilio re-sent."""
    if not key:
        return False
    limits: WebhookLimits = current_app.extensions[EXTENSION]
    if not limits.per_sender:
        return False
    return limits.counter.remember(key, limits.copy_seconds)


def check_sender_limit(sender_hash: str) -> Response | None:
    """Return a 429 response when this sender (hashed `From`) sent too many messages."""
    limits: WebhookLimits = current_app.extensions[EXTENSION]
    return _too_many(limits, limits.per_sender, "sender", sender_hash)


def _refuse_a_flooding_stranger() -> Response | None:
    limits: WebhookLimits = current_app.extensions[EXTENSION]
    if not limits.per_ip:
        return None
    req = this_request()
    if UNAUTHENTICATED.get(req.endpoint or "") != req.method:
        return None
    return _too_many(limits, limits.per_ip, "ip", _client_address(req), count=False)


def _count_a_failed_login(response: Response) -> Response:
    if response.status_code != 401:
        return response
    limits: WebhookLimits = current_app.extensions[EXTENSION]
    if limits.per_ip and UNAUTHENTICATED.get(request.endpoint or "") == request.method:
        _too_many(limits, limits.per_ip, "ip", _client_address())
    return response
