"""Request log lines are JSON with id, intent and latency, and no message or number."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from responder import create_app
from responder.dialogue.respond import Responder
from responder.errors import ConfigError
from responder.web.logging_setup import (
    REQUEST_LOGGER,
    SERVER_FIELDS,
    JsonFormatter,
    configure_logging,
    server_request_line,
)

PHONE = "+15557654321"
BODY = "my calf is cramping after parkrun secretword"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Capture the request logger's output through the real JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(REQUEST_LOGGER)
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


def _records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_sms_request_is_one_json_line(client: FlaskClient, log_lines: io.StringIO) -> None:
    response = client.post("/sms", data={"Body": BODY, "From": PHONE, "To": "+15550000000"})
    assert response.status_code == 200
    (record,) = _records(log_lines)
    assert record["event"] == "request" and record["level"] == "info"
    assert record["method"] == "POST" and record["path"] == "/sms"
    assert record["status"] == 200
    assert record["intent"] == "cramp_now"
    assert isinstance(record["latency_ms"], float) and 0 < record["latency_ms"] < 5000
    assert record["request_id"] == response.headers["X-Request-Id"]
    assert len(str(record["request_id"])) == 32


def test_no_body_text_or_number_in_any_line(client: FlaskClient, log_lines: io.StringIO) -> None:
    client.post("/sms", data={"Body": BODY, "From": PHONE})
    client.get(f"/sms?From={PHONE}&Body=secretword")  # 405, query string must not leak
    client.get(f"/nowhere?From={PHONE}")
    text = log_lines.getvalue()
    assert len(text.splitlines()) == 3
    for secret in (PHONE, PHONE[1:], "5557654321", "secretword", "parkrun"):
        assert secret not in text
    assert [r["status"] for r in _records(log_lines)] == [200, 405, 404]


@pytest.mark.parametrize(
    ("given", "kept"),
    (("abc-123.X_y", True), ("", False), ("x" * 65, False), ('a"b', False),
     (PHONE, False), ("call-15557654321", False)),
)
def test_caller_request_id_kept_only_when_safe(
    client: FlaskClient, log_lines: io.StringIO, given: str, kept: bool
) -> None:
    response = client.get("/healthz", headers={"X-Request-Id": given})
    (record,) = _records(log_lines)
    assert (record["request_id"] == given) is kept
    assert response.headers["X-Request-Id"] == record["request_id"]
    assert PHONE not in log_lines.getvalue()


def test_unhandled_error_is_still_logged(responder: Responder, log_lines: io.StringIO) -> None:
    app: Flask = create_app({"RESPONDER": responder})

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert [r["status"] for r in _records(log_lines)] == [500]


def test_unknown_log_level_stops_start_up() -> None:
    with pytest.raises(ConfigError, match="CALFLINE_LOG_LEVEL"):
        configure_logging("chatty")


def test_a_server_that_writes_the_line_gets_the_apps_fields(
    responder: Responder, tmp_path: Path, log_lines: io.StringIO
) -> None:
    app = create_app({"TESTING": True, "RESPONDER": responder, "REQUEST_LOG": "server",
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'calfline.sqlite3'}",
                      "SPOOL_DIR": str(tmp_path / "spool")})
    seen: list[dict[str, Any]] = []  # the environ the server would log from
    flask_app = app.wsgi_app

    def server(environ: dict[str, Any], start_response: Any) -> Any:
        seen.append(environ)
        return flask_app(environ, start_response)

    app.wsgi_app = server  # type: ignore[method-assign]
    response = app.test_client().post("/sms", data={"Body": BODY, "From": PHONE})
    app.extensions["calfline_store"].close()
    assert response.status_code == 200 and log_lines.getvalue() == ""  # not twice
    (environ,) = seen
    assert environ[SERVER_FIELDS] == {"request_id": response.headers["X-Request-Id"],
                                      "intent": "cramp_now"}
    line = server_request_line(environ, 200, 0.0123456, [("X-Request-Id", "ignored-header-id")])
    assert json.loads(line) | {"ts": "t"} == {
        "ts": "t", "level": "info", "logger": REQUEST_LOGGER, "event": "request",
        "request_id": response.headers["X-Request-Id"], "method": "POST", "path": "/sms",
        "status": 200, "intent": "cramp_now", "latency_ms": 12.346}
    for secret in (PHONE, PHONE[1:], "secretword", "parkrun"):
        assert secret not in line


def test_the_server_line_of_a_request_the_app_never_saw() -> None:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/calls/{PHONE}",
               "QUERY_STRING": f"From={PHONE}&Body=secretword"}
    record = json.loads(server_request_line(environ, 400, 0.001, [("x-request-id", "abc-123")]))
    assert record["request_id"] == "abc-123" and record["intent"] is None
    assert record["path"] == "/calls/[number]" and record["status"] == 400
    assert PHONE[2:] not in json.dumps(record) and "secretword" not in json.dumps(record)


def test_unknown_request_log_writer_stops_start_up(responder: Responder) -> None:
    with pytest.raises(ConfigError, match="CALFLINE_REQUEST_LOG"):
        create_app({"RESPONDER": responder, "REQUEST_LOG": "nginx"})
