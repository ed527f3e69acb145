"""Clinic profiles: validated at start-up, and a clinic's number gets its name in replies."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from responder import create_app
from responder.cli.frontdesk import cmd_clinic_key
from responder.dialogue.respond import Responder
from responder.errors import ClinicDataError
from responder.frontdesk.clinics import hash_api_key, load_clinics
from tests.frontdesk.conftest import HILLTOP_NUMBER, RIVERSIDE_NUMBER, write_clinics_file


def _clinic(**fields: Any) -> dict[str, Any]:
    base = {"id": "riverside", "name": "Riverside Physio", "numbers": ["+15550100001"],
            "phone": "+1 555 010 0002"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("clinics", "field"),
    [
        ([_clinic(name=None)], "clinics[riverside].name"),
        ([_clinic(name="The Very Long Riverside Physiotherapy Clinic")], "clinics[riverside].name"),
        ([_clinic(name="Riverside \u201cPhysio\u201d")], "clinics[riverside].name"),
        ([_clinic(numbers=["555-0100"])], "clinics[riverside].numbers[0]"),
        ([_clinic(numbers=[])], "clinics[riverside].numbers"),
        ([_clinic(id="Bad Id!")], "clinics[0].id"),
        ([_clinic(api_keys=["cl_plain_text_key"])], "clinics[riverside].api_keys"),
        ([_clinic(staff=[{"username": "a", "password_hash": "hunter2"}])],
         "clinics[riverside].staff[0].password_hash"),
        ([_clinic(staff=[{"username": "a", "password_hash": "pbkdf2:x", "role": "owner"}])],
         "clinics[riverside].staff[0].role"),
        ([_clinic(staff=[{"username": "a", "password_hash": "pbkdf2:x", "rol": "admin"}])],
         "clinics[riverside].staff[0]"),
        ([_clinic(escalation={"webhook_url": "ftp://x"})],
         "clinics[riverside].escalation.webhook_url"),
        ([_clinic(escalation={"webhook_url": "https://x.example/a"})],
         "clinics[riverside].escalation.webhook_secret"),
        ([_clinic(escalation={"phone": "911"})], "clinics[riverside].escalation.phone"),
        ([_clinic(escalate_chronic_pain="yes")], "clinics[riverside].escalate_chronic_pain"),
        ([_clinic(colour="red")], "clinics[0]"),
        ([_clinic(), _clinic(numbers=["+15550100002"])], "clinics[riverside].id"),
        ([_clinic(), _clinic(id="other", numbers=["+15550100001"])], "clinics[other].numbers"),
    ],
)
def test_bad_profile_names_file_and_field(
    tmp_path: Path, clinics: list[dict[str, Any]], field: str
) -> None:
    path = tmp_path / "clinics.yaml"
    path.write_text(yaml.safe_dump({"clinics": clinics}), encoding="utf-8")
    with pytest.raises(ClinicDataError) as error:
        load_clinics(path)
    assert error.value.field == field
    assert str(path) in str(error.value)


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ClinicDataError, match="clinics.yaml"):
        load_clinics(tmp_path / "clinics.yaml")


def test_no_file_means_no_clinics() -> None:
    assert load_clinics("").clinics == {}


def test_example_file_is_valid() -> None:
    directory = load_clinics(Path(__file__).parents[2] / "deploy" / "clinics.example.yaml")
    riverside = directory.for_api_key("cl_demo_riverside_change_me")
    assert riverside is not None and riverside.id == "riverside"
    assert directory.login("frontdesk", "riverside-demo-password") is riverside
    assert directory.login("frontdesk", "wrong") is None
    assert directory.login("nobody", "riverside-demo-password") is None
    staff = directory.sign_in("frontdesk", "riverside-demo-password")
    admin = directory.sign_in("riverside-admin", "riverside-admin-demo-password")
    assert staff is not None and staff[1].role == "staff" and not staff[1].is_admin
    assert admin is not None and admin[0] is riverside and admin[1].is_admin
    assert directory.staff_user("hilltop", "riverside-admin") is None  # not hilltop's


def test_keys_and_passwords_are_stored_hashed(tmp_path: Path) -> None:
    path = write_clinics_file(tmp_path / "c.yaml", "http://127.0.0.1:9/alerts")
    text = path.read_text()
    assert "cl_test_riverside" not in text and "riverside-pass-123" not in text
    assert hash_api_key("cl_test_riverside_0123456789abcdef") in text


def test_clinic_key_command_prints_a_key_and_its_hash(tmp_path: Path) -> None:
    import argparse
    import io

    out = io.StringIO()
    assert cmd_clinic_key(argparse.Namespace(stdin=False), io.StringIO(), out) == 0
    key_line, hash_line = out.getvalue().splitlines()
    key = key_line.removeprefix("key: ")
    assert hash_line == f"hash: {hash_api_key(key)}" and len(key) > 40


def _sms_reply(app_client: Any, to: str) -> str:
    response = app_client.post("/sms", data={"Body": "HELP", "From": "+15557654321", "To": to})
    assert response.status_code == 200
    return ET.fromstring(response.data).findtext("Message") or ""


def test_a_clinics_number_gets_its_name(tmp_path: Path, responder: Responder) -> None:
    path = write_clinics_file(tmp_path / "c.yaml", "http://127.0.0.1:9/alerts")
    app = create_app({"TESTING": True, "RESPONDER": responder, "CLINICS_FILE": str(path),
                      "SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{tmp_path / 'db'}"})
    client = app.test_client()
    assert "Riverside Physio" in _sms_reply(client, RIVERSIDE_NUMBER)
    assert "Hilltop Sports Clinic" in _sms_reply(client, HILLTOP_NUMBER)
    neutral = _sms_reply(client, "+15559999999")
    assert "CalfLine" in neutral and "Riverside" not in neutral and "Hilltop" not in neutral


def test_bad_clinics_file_stops_start_up(tmp_path: Path, responder: Responder) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("clinics:\n  - id: x\n", encoding="utf-8")
    with pytest.raises(ClinicDataError, match="clinics\\[x\\].numbers|clinics\\[x\\].name"):
        create_app({"TESTING": True, "RESPONDER": responder, "CLINICS_FILE": str(path)})
