"""Bad input gets a 4xx with a reason, never a 500: deep JSON, ids past the integer key."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.frontdesk.conftest import RIVERSIDE_KEY, STAFF, write_clinics_file


@pytest.fixture
def clinic_app(make_app: Callable[..., Flask], tmp_path: Path) -> Flask:
    clinics = write_clinics_file(tmp_path / "clinics.yaml", "http://127.0.0.1:9/hook")
    return make_app(CLINICS_FILE=str(clinics), SECRET_KEY="bad-input-test-key")


@pytest.mark.parametrize("depth", [1_000, 30_000])
def test_deeply_nested_json_is_a_400(clinic_app: Flask, depth: int) -> None:
    body = "[" * depth + "]" * depth  # within CALFLINE_MAX_BODY_BYTES; json.loads recurses
    response = clinic_app.test_client().post(
        "/api/v1/replies", data=body, content_type="application/json",
        headers={"Authorization": f"Bearer {RIVERSIDE_KEY}"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"


def _signed_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    page = client.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token is not None
    username, password = STAFF["riverside"]
    response = client.post("/console/login", data={
        "csrf_token": token.group(1), "username": username, "password": password})
    assert response.status_code == 302
    return client


@pytest.mark.parametrize("conversation_id", [2**31 - 1, 2**31, 2**63 - 1, 2**63, 10**30])
def test_a_conversation_id_beyond_any_row_is_a_404(clinic_app: Flask,
                                                   conversation_id: int) -> None:
    response = _signed_in(clinic_app).get(f"/console/conversations/{conversation_id}")
    assert response.status_code == 404
