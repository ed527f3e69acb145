"""POST /api/v1/replies against a real server, checked against responder/frontdesk/openapi.yaml."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from jsonschema import Draft202012Validator

from responder.dialogue.respond import MAX_MESSAGE_CHARS
from tests.frontdesk.conftest import HILLTOP_KEY, RIVERSIDE_KEY, LiveServer, http, start_server

CASES = Path(__file__).with_name("data") / "api_cases.tsv"
JSON = {"Content-Type": "application/json"}


def _cases() -> list[tuple[str, str, bool, str]]:
    with CASES.open(encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(r["channel"], r["intent"], r["urgent"] == "true", r["text"]) for r in rows]


@pytest.fixture(scope="module")
def spec(live_server: LiveServer) -> dict[str, Any]:
    status, _, body = http("GET", live_server.url + "/api/v1/openapi.json")
    assert status == 200
    assert body["openapi"].startswith("3.1")
    return dict(body)


def conforms(spec: dict[str, Any], path: str, status: int, body: Any) -> None:
    """Fail unless `status` is documented for the path and `body` matches its schema."""
    responses = spec["paths"][path]["post"]["responses"]
    assert str(status) in responses, f"{status} is not documented for POST {path}"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    # Root the $ref at a document that carries the components, as OpenAPI 3.1 does.
    Draft202012Validator({**schema, "components": spec["components"]}).validate(body)


def post(server: LiveServer, payload: Any, key: str | None = RIVERSIDE_KEY,
         headers: dict[str, str] | None = None, raw: bytes | None = None
         ) -> tuple[int, dict[str, str], Any]:
    head = dict(JSON if headers is None else headers)
    if key is not None:
        head["Authorization"] = f"Bearer {key}"
    data = raw if raw is not None else json.dumps(payload).encode()
    return http("POST", server.url + "/api/v1/replies", data, head)


@pytest.mark.parametrize(("channel", "intent", "urgent", "text"), _cases())
def test_clinic_messages_get_the_right_intent(
    live_server: LiveServer, spec: dict[str, Any], channel: str, intent: str, urgent: bool,
    text: str,
) -> None:
    status, _, body = post(live_server, {"text": text, "channel": channel})
    conforms(spec, "/api/v1/replies", status, body)
    assert status == 200
    assert (body["intent"], body["urgent"]) == (intent, urgent)
    assert body["template_id"].endswith(f".{channel}") or body["template_id"].startswith("system.")


def test_reply_names_the_key_owners_clinic(live_server: LiveServer) -> None:
    text = {"text": "HELP", "channel": "sms"}
    _, _, riverside = post(live_server, text, RIVERSIDE_KEY)
    _, _, hilltop = post(live_server, text, HILLTOP_KEY)
    assert "Riverside Physio" in riverside["reply"] and "Hilltop" not in riverside["reply"]
    assert "Hilltop Sports Clinic" in hilltop["reply"]


def test_channel_defaults_to_api(live_server: LiveServer) -> None:
    status, _, body = post(live_server, {"text": "which running shoes help with tight calves"})
    assert status == 200 and body["template_id"] == "shoe_question.api"


@pytest.mark.parametrize(
    ("case", "key", "payload", "headers", "raw", "status", "code"),
    [
        ("no key", None, {"text": "hi"}, None, None, 401, "missing_api_key"),
        ("wrong key", "cl_not_a_key", {"text": "hi"}, None, None, 401, "invalid_api_key"),
        ("no text", RIVERSIDE_KEY, {"channel": "sms"}, None, None, 400, "missing_text"),
        ("blank text", RIVERSIDE_KEY, {"text": "   "}, None, None, 400, "missing_text"),
        ("text not a string", RIVERSIDE_KEY, {"text": 42}, None, None, 400, "missing_text"),
        ("long text", RIVERSIDE_KEY, {"text": "x" * (MAX_MESSAGE_CHARS + 1)}, None, None, 413,
         "text_too_long"),
        ("bad channel", RIVERSIDE_KEY, {"text": "hi", "channel": "fax"}, None, None, 400,
         "invalid_channel"),
        ("not an object", RIVERSIDE_KEY, ["hi"], None, None, 400, "invalid_json"),
        ("broken json", RIVERSIDE_KEY, None, None, b'{"text": ', 400, "invalid_json"),
        ("form body", RIVERSIDE_KEY, None, {"Content-Type": "application/x-www-form-urlencoded"},
         b"text=hi", 415, "unsupported_media_type"),
        ("huge body", RIVERSIDE_KEY, None, None, b'{"text": "' + b"x" * 70000 + b'"}', 413,
         "request_entity_too_large"),
    ],
)
def test_bad_requests_get_a_json_reason(
    live_server: LiveServer, spec: dict[str, Any], case: str, key: str | None, payload: Any,
    headers: dict[str, str] | None, raw: bytes | None, status: int, code: str,
) -> None:
    got, head, body = post(live_server, payload, key, headers, raw)
    assert got == status, case
    conforms(spec, "/api/v1/replies", got, body)
    assert body["error"]["code"] == code
    if status == 401:
        assert head["WWW-Authenticate"].startswith("Bearer")


def test_get_is_refused_as_json(live_server: LiveServer, spec: dict[str, Any]) -> None:
    status, _, body = http("GET", live_server.url + "/api/v1/replies")
    assert status == 405
    conforms(spec, "/api/v1/replies", status, body)


def test_every_api_route_is_documented(spec: dict[str, Any], app: Flask) -> None:
    routes = {r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/api/")}
    assert routes == set(spec["paths"])
    for schema in spec["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    example = spec["paths"]["/api/v1/replies"]["post"]["requestBody"]["content"][
        "application/json"]["example"]
    request_schema = {"$ref": "#/components/schemas/ReplyRequest",
                      "components": spec["components"]}
    Draft202012Validator(request_schema).validate(example)


def test_a_red_flag_carries_its_care_and_signs(live_server: LiveServer,
                                               spec: dict[str, Any]) -> None:
    status, _, body = post(live_server, {"text": "pt reports chest pain and a swollen R calf"})
    conforms(spec, "/api/v1/replies", status, body)
    assert (body["intent"], body["care"], body["urgent"]) == ("red_flag", "emergency", True)
    assert {"chest_pain", "swelling"} <= set(body["signs"]) and body["check"] is None
    status, _, calm = post(live_server, {"text": "calves tight for 2 months even on rest days"})
    assert (calm["intent"], calm["care"], calm["signs"]) == ("chronic_pain", "soon", [])


def test_a_check_gives_staff_the_question_and_both_answers(
    cautious_server: LiveServer, spec: dict[str, Any],
) -> None:
    status, _, body = post(cautious_server, {"text": "calves tight after my run", "channel": "sms"})
    conforms(spec, "/api/v1/replies", status, body)
    assert (body["care"], body["intent"], body["urgent"]) == ("check", "post_run_tightness",
                                                              False)
    assert body["check"]["question"].startswith("Quick check:")
    assert len(body["check"]["question"]) <= 160
    assert body["check"]["if_yes"].startswith("Get urgent care today")
    assert body["template_id"] == "post_run_tightness.sms"


def test_too_many_bad_keys_get_a_documented_429(
    server_env: dict[str, str], frontdesk_dir: Path, spec: dict[str, Any],
) -> None:
    """Bad API keys count against the address; the refusal has the API's error shape."""
    env = {**server_env, "CALFLINE_RATELIMIT_PER_IP": "2/minute",
           "DATABASE_URL": f"sqlite:///{frontdesk_dir / 'limited.db'}"}
    server = start_server(env, frontdesk_dir / "limited.log")
    try:
        statuses = [post(server, {"text": "calf cramp"}, "cl_wrong")[0] for _ in range(3)]
        assert statuses == [401, 401, 429]
        status, head, body = post(server, {"text": "calf cramp"}, "cl_wrong")
        conforms(spec, "/api/v1/replies", status, body)
        assert body["error"]["code"] == "too_many_requests" and int(head["Retry-After"]) >= 1
    finally:
        server.stop()


def test_a_spanish_message_gets_a_spanish_reply_and_the_english_one(
        live_server: LiveServer, spec: dict[str, Any]) -> None:
    text = "tengo la pantorrilla bien tensa despues de correr el domingo"
    status, _, body = post(live_server, {"text": text, "channel": "sms"})
    conforms(spec, "/api/v1/replies", status, body)
    assert (body["language"], body["detected_language"]) == ("es", "es")
    assert "pantorrilla" in body["reply"] and set(body["other_languages"]) == {"en"}
    assert "calf" in body["other_languages"]["en"].lower()
    status, _, forced = post(live_server, {"text": text, "channel": "sms", "language": "en"})
    conforms(spec, "/api/v1/replies", status, forced)
    assert forced["language"] == "en" and forced["reply"] == body["other_languages"]["en"]
    assert forced["other_languages"]["es"] == body["reply"]


def test_an_unknown_language_is_refused_with_a_reason(
        live_server: LiveServer, spec: dict[str, Any]) -> None:
    status, _, body = post(live_server, {"text": "hola", "language": "fr"})
    conforms(spec, "/api/v1/replies", status, body)
    assert status == 400 and body["error"]["code"] == "invalid_language"
