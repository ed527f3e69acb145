"""The clinic admin's pages: the audit trail (and its CSV); the dashboard is in dashboard.py.

Same sign-in, CSRF check and headers as the console; on top, the signed-in
staff entry must have `role: admin` in the clinics file (read per request):
anyone else gets 403. Every query takes the clinic from the session, so an
admin only ever sees their own clinic's rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, abort, current_app, g, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.wrappers import Response as BaseResponse

from responder.frontdesk import console
from responder.frontdesk.csv_export import csv_download
from responder.frontdesk.staff_audit import record_action
from responder.store import audit

bp = Blueprint("admin", __name__, url_prefix="/console/admin", template_folder="templates")
bp.after_request(console._security_headers)
bp.context_processor(console._template_globals)
bp.register_error_handler(CSRFError, console._csrf_failed)
AUDIT_PAGE_ROWS = 500
AUDIT_DEFAULT_DAYS = 30


@bp.before_request
def _require_admin() -> BaseResponse | None:
    """Signed in (else the login page), and an admin of the clinic (else 403)."""
    redirect = console._require_login_and_csrf()
    if redirect is not None:
        return redirect
    if not g.staff.is_admin:
        abort(403)
    return None


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str, int]:
    titles = {403: "Admins only", 404: "Not found"}
    messages = {403: "This page is for your clinic's admins. Ask one of them, or the "
                     "person who keeps your clinic's profile, if you need it.",
                404: "There is no such page for your clinic."}
    code = exc.code or 500
    return render_template("console/error.html", title=titles.get(code, exc.name),
                           clinic=g.get("clinic"),
                           message=messages.get(code, exc.description)), code


def day_arg(name: str, default: date) -> date:
    """A YYYY-MM-DD query argument; a bad one is a 400 that says which."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name}: {raw[:20]!r} is not a date like 2026-11-30") from None


def _audit_filters() -> tuple[date, date, str | None]:
    today = datetime.now(UTC).date()
    last = day_arg("to", today)
    first = day_arg("from", last - timedelta(days=AUDIT_DEFAULT_DAYS - 1))
    if first > last:
        raise BadRequest("from: must be on or before to")
    action = request.args.get("action") or None
    if action is not None and action not in audit.ACTIONS:
        raise BadRequest("action: not one of the audit trail's actions")
    return first, last, action


def _bounds(first: date, last: date) -> dict[str, Any]:
    return {"since": datetime.combine(first, time(), UTC),
            "until": datetime.combine(last + timedelta(days=1), time(), UTC)}


@bp.get("/audit")
def audit_trail() -> str:
    """The clinic's audit trail, newest first, filtered by days and action."""
    first, last, action = _audit_filters()
    engine = current_app.extensions["calfline_store"].engine
    rows = audit.events(engine, g.clinic.id, action=action, limit=AUDIT_PAGE_ROWS,
                        **_bounds(first, last))
    record_action(audit.VIEW_AUDIT, detail=f"{first}..{last} {action or 'all'}")
    return render_template("console/audit.html", clinic=g.clinic, rows=rows, first=first,
                           last=last, action=action, actions=sorted(audit.ACTIONS),
                           limit=AUDIT_PAGE_ROWS)


@bp.get("/audit.csv")
def audit_csv() -> BaseResponse:
    """Every matching row, oldest first, as a formula-safe CSV."""
    first, last, action = _audit_filters()
    engine = current_app.extensions["calfline_store"].engine
    record_action(audit.EXPORT_AUDIT, detail=f"{first}..{last} {action or 'all'}")
    rows = ((r.at.isoformat(), r.actor, r.action, r.subject, r.detail)
            for r in audit.stream(engine, g.clinic.id, action=action, **_bounds(first, last)))
    return csv_download(f"audit-{g.clinic.id}-{first}-{last}.csv",
                        ("time_utc", "actor", "action", "subject", "detail"), rows)
