"""Liveness for load balancers and `calfline serve`: the process is up and loaded."""

from flask import Blueprint

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    """Answer 200 once the app is built (intents are loaded in create_app)."""
    return {"status": "ok"}, 200
