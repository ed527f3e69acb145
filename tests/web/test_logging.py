"""Request log lines are JSON with id, intent and latency, and no message or number."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from responder import create_app
from responder.dialogue.respond import Responder
from responder.errors import ConfigError
from responder.web.logging_setup import REQUEST_LOGGER, JsonFormatter, configure_logging

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
