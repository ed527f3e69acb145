"""Liveness and readiness for load balancers, orchestrators and `calfline serve`.

/healthz says the process is up (restart it if not). /readyz says whether to
send it traffic, within 1 s whatever the database does:

- `intents`: the catalog is loaded;
- `database`: it takes a write now (a one-row write under the store guard,
  PROBE_SECONDS at most), else why not and for how long;
- `spool`: turns answered without the database and waiting to be recorded.

"ready" (200): all well. "degraded" (200): the database takes writes again and
the spool is being replayed into it. "not ready" (503): no intents, the database
cannot be written, or turns went to the spool in the last GROWING_SECONDS.
The webhooks answer in every state (README "When things fail").
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app

from responder.errors import StoreUnavailable

bp = Blueprint("health", __name__)
log = logging.getLogger("calfline.health")
PROBE_SECONDS = 0.8  # /readyz answers within 1 s
GROWING_SECONDS = 10.0
Check = tuple[bool, str]


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    """Answer 200 once the app is built (intents are loaded in create_app)."""
    return {"status": "ok"}, 200


def intents_status() -> Check:
    """Report whether the responder is built with a non-empty intent catalog."""
    responder = current_app.extensions.get("calfline")
    catalog = getattr(responder, "catalog", None)
    count = len(getattr(catalog, "intents", ()))
    return (count > 0, f"{count} intents loaded" if count else "no intents loaded")


def database_status() -> Check:
    """Report whether the store takes a write now; no store is not an error."""
    store = current_app.extensions.get("calfline_store")
    if store is None:
        return True, "no database configured"
    try:
        store.guard.attempt(store.write_probe, PROBE_SECONDS)
    except StoreUnavailable:
        # The reason names the error type and its first line, never the database URL.
        return False, (f"not writable for {store.guard.down_for():.0f} s "
                       f"({store.guard.reason})")
    return True, "writable"


def spool_status() -> tuple[Check, int, bool]:
    """Report the turns waiting in the spool: (check, how many, growing)."""
    fallback = current_app.extensions.get("calfline_fallback")
    if fallback is None:
        return (True, "no spool"), 0, False
    pending = fallback.spool.pending()
    age = fallback.spool.last_append_age()
    growing = pending > 0 and age is not None and age < GROWING_SECONDS
    if not pending:
        return (True, "empty"), 0, False
    state = "growing" if growing else "being replayed"
    return (not growing, f"{pending} turns waiting, {state}"), pending, growing


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    """Answer 200 (ready or degraded) or 503 naming the check that failed."""
    spool, pending, _ = spool_status()
    checks = {"intents": intents_status(), "database": database_status(), "spool": spool}
    ready = all(ok for ok, _ in checks.values())
    status = ("degraded" if pending else "ready") if ready else "not ready"
    body = {
        "status": status,
        "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()},
        "spool_pending": pending,
    }
    return body, 200 if ready else 503
