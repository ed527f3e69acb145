"""Asking for a person: the reply says when the clinic calls back (its hours, now), a
callback request goes to its inbox, and a caller is offered the front desk while it is open."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask

from responder.frontdesk.clinics import Clinic
from responder.frontdesk.hours import DAYS
from responder.store.conversation_store import utcnow
from tests.frontdesk.conftest import (
    PUBLIC_URL,
    RIVERSIDE_NUMBER,
    WebhookRecorder,
    write_clinics_file,
)
from tests.frontdesk.workflow_helpers import items, text_in
from tests.twilio_signing import sign

PATIENT = "+15557770606"
ALWAYS_OPEN = {"timezone": "UTC", **{day: "00:00-24:00" for day in DAYS}}


def _closed_today() -> dict[str, str]:
    """Hours on one day three days from now only: closed whenever the test runs."""
    day = DAYS[(utcnow() + timedelta(days=3)).weekday()]
    return {"timezone": "UTC", day: "09:00-17:00"}


def _app(make_app: Callable[..., Flask], config: dict[str, Any], tmp_path: Path,
         webhook: WebhookRecorder, hours: Any) -> Flask:
    clinics = write_clinics_file(tmp_path / "clinics.yaml", webhook.url, hours=hours)
    return make_app(**{**config, "CLINICS_FILE": str(clinics)})


def _voice(app: Flask, path: str, **form: str) -> ET.Element:
    fields = {"From": PATIENT, "To": RIVERSIDE_NUMBER, "CallSid": "CA" + "1" * 32, **form}
    response = app.test_client().post(
        path, data=fields, headers={"X-Twilio-Signature": sign(PUBLIC_URL + path, fields)})
    assert response.status_code == 200, response.data
    return ET.fromstring(response.data)


def _riverside(app: Flask) -> Clinic:
    clinic: Clinic = app.extensions["calfline_clinics"].clinics["riverside"]
    return clinic


@pytest.mark.parametrize("hours", ["Mon-Fri 8am-6pm", "open", "closed"])
def test_sms_says_when_the_clinic_calls_back(make_app: Callable[..., Flask],
                                             workflow_config: dict[str, Any], tmp_path: Path,
                                             webhook: WebhookRecorder, hours: str) -> None:
    profile = {"open": ALWAYS_OPEN, "closed": _closed_today()}.get(hours, hours)
    app = _app(make_app, workflow_config, tmp_path, webhook, profile)
    reply = text_in(app, "can someone from the clinic call me back", "SM" + "1" * 32, PATIENT,
                    RIVERSIDE_NUMBER) or ""
    when = _riverside(app).callback_when(utcnow())
    assert f"We've asked Riverside Physio to call you back {when}." in reply
    assert "+1 555 010 0002" in reply and "911" in reply
    if hours == "closed":
        assert " from 9am" in when
    elif hours == "open":
        assert when.startswith("today before")
    else:
        assert when == "during opening hours, Mon-Fri 8am-6pm"
    ((kind, number),) = [(i.kind, i.patient_number) for i in items(app)]
    assert (kind, number) == ("callback", PATIENT)


def test_without_a_clinic_the_configured_phone(make_app: Callable[..., Flask],
                                               workflow_config: dict[str, Any]) -> None:
    app = make_app(**workflow_config, CLINIC_PHONE="+1 555 999 0000")
    reply = text_in(app, "i want to talk to a real person", "SM" + "2" * 32, PATIENT,
                    "+15559990000") or ""
    assert "call +1 555 999 0000" in reply and "call you back" not in reply
    assert items(app) == []


def test_a_caller_is_offered_the_front_desk_while_open(
        make_app: Callable[..., Flask], workflow_config: dict[str, Any], tmp_path: Path,
        webhook: WebhookRecorder) -> None:
    app = _app(make_app, workflow_config, tmp_path, webhook, ALWAYS_OPEN)
    root = _voice(app, "/voice/answer?turn=1&tries=0", SpeechResult="can i talk to a person")
    said = " ".join(s.text or "" for s in root.iter("Say"))
    assert "call you back today before" in said and "say connect" in said
    (gather,) = root.iter("Gather")
    action = urlsplit(gather.attrib["action"])
    assert parse_qs(action.query) == {"turn": ["2"], "tries": ["0"], "offer": ["1"],
                                      "handoff": ["1"]}
    root = _voice(app, f"{action.path}?{action.query}", Digits="1")
    (dial,) = root.iter("Dial")
    assert dial.text == "+15550100002"  # the clinic's phone, not the alert phone
    assert "will call you back" in " ".join(s.text or "" for s in root.iter("Say"))
    assert [i.kind for i in items(app)] == ["callback"]


def test_a_caller_is_not_offered_a_closed_front_desk(
        make_app: Callable[..., Flask], workflow_config: dict[str, Any], tmp_path: Path,
        webhook: WebhookRecorder) -> None:
    app = _app(make_app, workflow_config, tmp_path, webhook, _closed_today())
    root = _voice(app, "/voice/answer?turn=1&tries=0", SpeechResult="can i talk to a person")
    assert list(root.iter("Dial")) == []
    (gather,) = root.iter("Gather")
    assert "offer" not in parse_qs(urlsplit(gather.attrib["action"]).query)
    said = " ".join(s.text or "" for s in root.iter("Say"))
    assert "from 9am" in said and "connect" not in said


def test_a_spanish_request_for_a_person_says_when_in_spanish(
        make_app: Callable[..., Flask], workflow_config: dict[str, Any], tmp_path: Path,
        webhook: WebhookRecorder) -> None:
    app = _app(make_app, workflow_config, tmp_path, webhook, ALWAYS_OPEN)
    reply = text_in(app, "quiero hablar con alguien de la clinica, me pueden llamar?",
                    "SM" + "5" * 32, PATIENT, RIVERSIDE_NUMBER) or ""
    when = _riverside(app).callback_when(utcnow(), "es")
    assert when.startswith("hoy antes de las")
    assert f"Riverside Physio le devolvera la llamada {when}." in reply
    assert "+1 555 010 0002" in reply and "911" in reply
    ((kind, number),) = [(i.kind, i.patient_number) for i in items(app)]
    assert (kind, number) == ("callback", PATIENT)
