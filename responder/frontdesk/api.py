"""The clinic JSON API: a front desk posts a patient's question and gets the reviewed reply.

Described in responder/frontdesk/openapi.yaml, served at /api/v1/openapi.json; a test
checks real responses against that file so it stays true.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from responder.dialogue.respond import MAX_MESSAGE_CHARS, Responder
from responder.dialogue.staff_answer import staff_answer
from responder.frontdesk.clinics import Clinic, ClinicDirectory, variables_for_clinic
from responder.nlu.catalog import CHANNELS, LANGUAGES

bp = Blueprint("api", __name__, url_prefix="/api/v1")
OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")


class ApiError(Exception):
    """A 4xx answer with a machine-readable code and a sentence for the developer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> Response:
    """Render the API's one error shape: {"error": {"code", "message"}}."""
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    if status == 401:
        # RFC 6750 section 3: tell the client which scheme to use.
        error = ' error="invalid_token"' if code == "invalid_api_key" else ""
        response.headers["WWW-Authenticate"] = f'Bearer realm="calfline"{error}'
    return response


def load_openapi(app: Flask) -> None:
    """Read the OpenAPI description once, at start-up."""
    app.extensions["calfline_openapi"] = yaml.safe_load(OPENAPI_FILE.read_text("utf-8"))


def _authenticate() -> Clinic:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    # RFC 7235 section 2.1: the auth scheme is case-insensitive.
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(
            401, "missing_api_key", "send the clinic's key as 'Authorization: Bearer <key>'"
        )
    directory: ClinicDirectory = current_app.extensions["calfline_clinics"]
    clinic = directory.for_api_key(key.strip())
    if clinic is None:
        raise ApiError(401, "invalid_api_key", "this API key belongs to no clinic")
    return clinic


def _read_request() -> tuple[str, str, str | None]:
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    payload: Any = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "missing_text", "'text' must be a non-empty string")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ApiError(413, "text_too_long", f"'text' is over {MAX_MESSAGE_CHARS} characters")
    channel = payload.get("channel", "api")
    if channel not in CHANNELS:
        raise ApiError(400, "invalid_channel", f"'channel' must be one of {list(CHANNELS)}")
    language = payload.get("language", "auto")
    if language not in (*LANGUAGES, "auto"):
        raise ApiError(400, "invalid_language",
                       f"'language' must be one of {[*LANGUAGES, 'auto']}")
    return text, channel, None if language == "auto" else language


@bp.post("/replies")
def create_reply() -> Response:
    """Match a forwarded question and return the reviewed reply for the clinic."""
    clinic = _authenticate()
    text, channel, language = _read_request()
    responder: Responder = current_app.extensions["calfline"]
    variables = variables_for_clinic(current_app, clinic)
    answer = staff_answer(responder, text, channel, variables, language)
    match, reply = answer.match, answer.reply
    g.calfline_intent = match.intent  # for the request log line
    check = None
    if answer.check:
        # Staff ask the question themselves: the urgent text for YES, the advice for NO.
        check = {"question": answer.check.question, "if_yes": answer.check.if_yes}
    return jsonify(
        language=answer.language,
        detected_language=match.language,
        other_languages=dict(answer.other_languages),
        intent=match.intent,
        care=match.care,
        confidence=round(match.confidence, 4),
        runner_up=match.runner_up,
        signs=list(match.present_signs),
        check=check,
        reply=reply.text,
        urgent=reply.urgent,
        template_id=reply.template_id,
    )


@bp.get("/openapi.json")
def openapi() -> Response:
    """Serve the API's OpenAPI 3.1 description."""
    return jsonify(current_app.extensions["calfline_openapi"])


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message)


@bp.app_errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response | HTTPException:
    """Answer HTTP errors under /api/ as JSON; leave other paths to Flask."""
    if not request.path.startswith(bp.url_prefix or "/api/"):
        return exc
    status = exc.code or 400
    code = (exc.name or "error").lower().replace(" ", "_")
    return error_response(status, code, exc.description or exc.name)
