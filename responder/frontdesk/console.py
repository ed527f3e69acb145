"""The staff console: server-rendered pages for a clinic's front desk, behind a login.

Staff paste a patient's question and get the reviewed reply to send, and see
recent conversations on their clinic's numbers with red flags marked. Every
page reads the clinic from the signed session and filters on its numbers;
every POST carries Flask-WTF's session-bound CSRF token. Sign-ins (and failed
ones), sign-outs and each conversation viewed go to the audit trail.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from werkzeug.wrappers import Response as BaseResponse
from wtforms.validators import ValidationError

from responder.dialogue.respond import MAX_MESSAGE_CHARS, Responder
from responder.dialogue.staff_answer import staff_answer
from responder.frontdesk.clinics import Clinic, ClinicDirectory, variables_for_clinic
from responder.frontdesk.conversation_page import conversation_context
from responder.frontdesk.session_cookie import CachedSignerSessionInterface
from responder.frontdesk.staff_audit import record_action
from responder.nlu.catalog import CHANNELS
from responder.store import audit
from responder.store.clinic_conversations import (
    FLAG_INTENTS,
    clinic_conversation,
    clinic_conversations,
)

LANGUAGE_NAMES = {"en": "English", "es": "Spanish (español)"}
bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static")
SESSION_HOURS = 8
_PUBLIC = {"console.login", "console.static"}
# Patient messages are on these pages: no caching, no framing, only our own scripts.
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
}


def _directory() -> ClinicDirectory:
    directory: ClinicDirectory = current_app.extensions["calfline_clinics"]
    return directory


@bp.before_request
def _require_login_and_csrf() -> BaseResponse | None:
    """Send strangers to the login page; refuse a POST without a valid CSRF token."""
    if request.method == "POST":
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError as exc:
            raise CSRFError(str(exc)) from exc
    directory = _directory()
    clinic = directory.clinics.get(session.get("clinic_id", ""))
    # The role is read from the clinic profile on every request, never from the cookie.
    staff = directory.staff_user(clinic.id, session.get("username", "")) if clinic else None
    if staff is None and request.endpoint not in _PUBLIC:
        session.clear()
        target = request.full_path if request.query_string else request.path
        return redirect(url_for("console.login", next=target))
    g.clinic, g.staff = (clinic, staff) if staff else (None, None)
    return None


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers.update(_HEADERS)
    return response


@bp.errorhandler(CSRFError)
def _csrf_failed(exc: CSRFError) -> tuple[str, int]:
    return render_template("console/error.html", title="Form expired", clinic=g.get("clinic"),
                           message="This form expired or was sent from another site. "
                                   "Go back, reload the page and try again."), 400


@bp.errorhandler(404)
def _not_found(exc: Exception) -> tuple[str, int]:
    return render_template("console/error.html", title="Not found", clinic=g.get("clinic"),
                           message="There is no such conversation on your clinic's numbers."), 404


@bp.context_processor
def _template_globals() -> dict[str, Any]:
    return {"csrf_token": generate_csrf, "flag_labels": {
        "red_flag": "Red flag", "chronic_pain": "Chronic pain"}}


def _safe_next(target: str | None) -> str:
    # Only same-site paths, never //host or a full URL (an open redirect).
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return url_for("console.reply")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | BaseResponse | tuple[str, int]:
    """Sign a staff member in to their clinic."""
    error = None
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        signed_in = _directory().sign_in(username, request.form.get("password", ""))
        if signed_in is not None:
            clinic, staff = signed_in
            session.clear()  # a fresh session: no fixation across the login
            session.permanent = True
            session["clinic_id"] = clinic.id
            session["username"] = staff.username
            record_action(audit.SIGN_IN, detail=f"ip={request.remote_addr}",
                          clinic_id=clinic.id, actor=staff.username)
            return redirect(_safe_next(request.args.get("next")))
        # An unknown "username" is often a password typed in the wrong box: not stored.
        known = _directory().clinic_of(username)
        record_action(audit.SIGN_IN_FAILED, detail=f"ip={request.remote_addr}",
                      clinic_id=known.id if known else "",
                      actor=username if known else audit.UNKNOWN_ACTOR)
        error = "Wrong username or password."
    page = render_template("console/login.html", error=error)
    return (page, 401) if error else page


@bp.post("/logout")
def logout() -> BaseResponse:
    """End the session."""
    record_action(audit.SIGN_OUT)
    session.clear()
    return redirect(url_for("console.login"))


@bp.route("/", methods=["GET", "POST"])
def reply() -> str | tuple[str, int]:
    """Paste a patient's question; show the reviewed reply and the intent."""
    clinic: Clinic = g.clinic
    text = request.form.get("text", "")
    channel = request.form.get("channel", "sms")
    answer, error, check = None, None, None
    if request.method == "POST":
        if not text.strip():
            error = "Paste the patient's message first."
        elif len(text) > MAX_MESSAGE_CHARS:
            error = f"That message is over {MAX_MESSAGE_CHARS} characters; paste a shorter part."
        elif channel not in CHANNELS:
            error = "Pick SMS, voice or API."
        else:
            responder: Responder = current_app.extensions["calfline"]
            variables = variables_for_clinic(current_app, clinic)
            answer = staff_answer(responder, text, channel, variables)
            g.calfline_intent = answer.match.intent  # for the request log line
            check = answer.check
    labels = {i.id: i.label for i in current_app.extensions["calfline"].catalog.intents.values()}
    page = render_template("console/reply.html", clinic=clinic, text=text, channel=channel,
                           channels=CHANNELS, answer=answer, error=error, labels=labels,
                           check=check, language_names=LANGUAGE_NAMES)
    return (page, 400) if error else page


@bp.get("/conversations")
def conversations() -> str:
    """List recent conversations on the clinic's numbers, optionally only flagged ones."""
    clinic: Clinic = g.clinic
    flag = request.args.get("flag")
    flag = flag if flag in FLAG_INTENTS else None
    engine = current_app.extensions["calfline_store"].engine
    rows = clinic_conversations(engine, clinic.numbers, flag)
    return render_template("console/conversations.html", clinic=clinic, rows=rows, flag=flag,
                           flags=FLAG_INTENTS)


@bp.get("/conversations/<int:conversation_id>")
def conversation(conversation_id: int) -> str:
    """Show one conversation's messages; another clinic's is a 404, never a peek."""
    clinic: Clinic = g.clinic
    store = current_app.extensions["calfline_store"]
    row = clinic_conversation(store.engine, clinic.numbers, conversation_id)
    if row is None:
        abort(404)
    record_action(audit.VIEW_CONVERSATION, f"conversation:{conversation_id}")
    return render_template("console/conversation.html", clinic=clinic, row=row,
                           **conversation_context(clinic, conversation_id))


def configure_sessions(app: Any) -> None:
    """Cookie settings for the console's session (no JS access, same-site only)."""
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("PERMANENT_SESSION_LIFETIME", timedelta(hours=SESSION_HOURS))
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", SESSION_HOURS * 3600)
    app.session_interface = CachedSignerSessionInterface()  # one signer per key, not per request
