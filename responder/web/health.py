"""Liveness and readiness for load balancers, orchestrators and `calfline serve`.

/healthz says the process is up (restart it if not); /readyz says it can
answer right now (send it traffic only if so): intents loaded and, when a
database is configured, the database answering.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app

bp = Blueprint("health", __name__)
log = logging.getLogger("calfline.health")


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    """Answer 200 once the app is built (intents are loaded in create_app)."""
    return {"status": "ok"}, 200


def intents_status() -> tuple[bool, str]:
    """Report whether the responder is built with a non-empty intent catalog."""
    responder = current_app.extensions.get("calfline")
    catalog = getattr(responder, "catalog", None)
    count = len(getattr(catalog, "intents", ()))
    return (count > 0, f"{count} intents loaded" if count else "no intents loaded")


def ping_store(store: Any) -> None:
    """Round-trip to the store's database; raise if it does not answer."""
    ping = getattr(store, "ping", None)
    if callable(ping):
        ping()
        return
    from sqlalchemy import text

    with store.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def database_status() -> tuple[bool, str]:
    """Report whether the configured store answers; no store is not an error."""
    store = current_app.extensions.get("calfline_store")
    if store is None:
        return True, "no database configured"
    try:
        ping_store(store)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with a reason
        # The message can carry the database URL; it goes to the log, not the caller.
        log.warning("database not reachable", extra={"error": type(exc).__name__})
        return False, f"unreachable ({type(exc).__name__})"
    return True, "reachable"


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    """Answer 200 when every check passes, else 503 naming the one that failed."""
    checks = {"intents": intents_status(), "database": database_status()}
    ready = all(ok for ok, _ in checks.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()},
    }
    return body, 200 if ready else 503
