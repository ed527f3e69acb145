"""One JSON log line per request: id, method, path, status, intent, latency.

Messages and phone numbers are personal health data, so no log line at INFO
carries the message body, the sender's number or the query string (a GET
webhook puts both there). Views name the intent with `flask.g.calfline_intent`.

Under deploy/gunicorn.conf.py the line is gunicorn's access log line: the app
leaves its own fields in the WSGI environ (SERVER_FIELDS) and the server writes
the line once the response is out (server_request_line), instead of one line
from each of them per request. Elsewhere, or with CALFLINE_REQUEST_LOG=app, the
app writes it to stderr itself.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, g, request

from responder.channels.flask_context import request_globals
from responder.errors import ConfigError

REQUEST_LOGGER = "calfline.request"
REQUEST_ID_HEADER = "X-Request-Id"
# Where the app leaves its fields for a server that writes the request line itself.
SERVER_FIELDS = "calfline.request_log"
# A caller's id is kept only if it is short and plain, so it cannot forge log
# fields or smuggle a phone number past the formatter.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_PHONE_LIKE = re.compile(r"\+?\d(?:[\s().-]*\d){6,}")
# Attributes every LogRecord has; anything else was passed in `extra`.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, logger, message and extras."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        return json_line(record.created, record.levelname.lower(), record.name,
                         record.getMessage(), fields)


def json_line(created: float, level: str, logger: str, event: str,
              fields: dict[str, Any]) -> str:
    """One log line as JSON: UTC time to the millisecond, level, logger, event, fields."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    line = {"ts": f"{stamp}.{int(created % 1 * 1000):03d}Z", "level": level,
            "logger": logger, "event": event, **fields}
    return json.dumps(line, default=str, ensure_ascii=False)


def request_fields(ours: dict[str, Any], method: str | None, path: str, status: int,
                   seconds: float | None) -> dict[str, Any]:
    """A request line's fields, in their order: the app's own (`ours`: request id,
    intent, the spool gauge) around the method, the masked path, status and latency."""
    return {"request_id": None, "method": method,
            # Never the query string: a GET webhook puts the number and text there.
            "path": redact_path(path), "status": status, "intent": None,
            "latency_ms": None if seconds is None else round(seconds * 1000.0, 3), **ours}


def server_request_line(environ: dict[str, Any], status: int, seconds: float,
                        headers: Iterable[tuple[str, str]] = ()) -> str:
    """The request line a WSGI server writes after answering: the app's fields from the
    environ (SERVER_FIELDS), else the response's X-Request-Id from `headers`, with the
    method, the masked path, the status and the whole request's time."""
    ours = environ.get(SERVER_FIELDS) or {"request_id": next(
        (value for name, value in headers if name.lower() == REQUEST_ID_HEADER.lower()), None)}
    fields = request_fields(ours, environ.get("REQUEST_METHOD"),
                            str(environ.get("PATH_INFO") or ""), status, seconds)
    return json_line(time.time(), "info", REQUEST_LOGGER, "request", fields)


def configure_logging(level: str = "INFO") -> None:
    """Send CalfLine's loggers to stderr as JSON lines, once per process."""
    if level.upper() not in logging.getLevelNamesMapping():
        raise ConfigError(f"CALFLINE_LOG_LEVEL={level!r}: not a logging level")
    logger = logging.getLogger("calfline")
    logger.setLevel(level.upper())
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    # Our lines are complete; the root logger (gunicorn's or pytest's) would repeat them.
    logger.propagate = False


def redact_path(path: str) -> str:
    """Replace digit runs long enough to be a phone number with a placeholder."""
    return _PHONE_LIKE.sub("[number]", path)


def request_id() -> str:
    """Return the caller's X-Request-Id if it is safe to log, else a fresh one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    if _SAFE_REQUEST_ID.fullmatch(given) and not _PHONE_LIKE.search(given):
        return given
    return uuid.uuid4().hex


def _start() -> None:
    here = request_globals()
    here.calfline_started = time.perf_counter()
    here.calfline_request_id = request_id()


def _own_fields(response: Response) -> dict[str, Any]:
    """Send the request id back, and return what only the app knows of the request."""
    here = request_globals()
    rid = here.get("calfline_request_id") or uuid.uuid4().hex
    response.headers[REQUEST_ID_HEADER] = rid
    ours: dict[str, Any] = {"request_id": rid, "intent": here.get("calfline_intent")}
    pending = here.get("calfline_spool_pending")
    if pending is not None:
        # Set when this turn went to the spool: how many turns wait there (a gauge).
        ours["spool_pending"] = pending
    return ours


def _log(response: Response) -> Response:
    started = g.get("calfline_started")
    seconds = time.perf_counter() - started if started is not None else None
    logging.getLogger(REQUEST_LOGGER).info("request", extra=request_fields(
        _own_fields(response), request.method, request.path, response.status_code, seconds))
    return response


def _leave_for_server(response: Response) -> Response:
    request.environ[SERVER_FIELDS] = _own_fields(response)  # its access log writes the line
    return response


def install_request_logging(app: Flask) -> None:
    """Time every request and log it as one JSON line when the response is ready."""
    configure_logging(str(app.config.get("LOG_LEVEL", "INFO")))
    if app.config.get("REQUEST_LOG", "app") not in {"app", "server"}:
        raise ConfigError(f"CALFLINE_REQUEST_LOG={app.config['REQUEST_LOG']!r}: "
                          "use app or server")
    app.before_request(_start)
    app.after_request(_leave_for_server if app.config.get("REQUEST_LOG") == "server" else _log)
