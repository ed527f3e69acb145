"""The /sms webhook answers valid TwiML for any input, never a 500."""

import xml.etree.ElementTree as ET

import pytest
from flask.testing import FlaskClient

from responder.gsm import MAX_SMS_CHARS, is_gsm7


def _messages(body: bytes) -> list[str]:
    root = ET.fromstring(body)
    assert root.tag == "Response"
    return [m.text or "" for m in root.findall("Message")]


def _post(client: FlaskClient, **form: str) -> list[str]:
    response = client.post("/sms", data=form)
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    return _messages(response.data)


def test_cramp_gets_stretch_advice(client: FlaskClient) -> None:
    (text,) = _post(client, Body="calf cramping bad what do i do", From="+15550001111")
    assert "stretch" in text.lower() or "toes" in text.lower()
    assert len(text) <= MAX_SMS_CHARS and is_gsm7(text)


def test_red_flag_gets_urgent_message(client: FlaskClient) -> None:
    (text,) = _post(client, Body="cramped then my calf swelled up and its hot", From="+1555")
    assert "911" in text and "urgent care" in text.lower()


def test_opt_out_gets_empty_response(client: FlaskClient) -> None:
    assert _post(client, Body="STOP", From="+15550001111") == []


@pytest.mark.parametrize(
    "body",
    ["", " ", "x" * 5000, "\x00\x01\x02", "🦵" * 300, "<Response>&amp;</Response>", "STOP" * 400],
)
def test_odd_bodies_get_valid_twiml(client: FlaskClient, body: str) -> None:
    for text in _post(client, Body=body, From="+15550001111"):
        assert len(text) <= MAX_SMS_CHARS and is_gsm7(text)


def test_missing_fields_get_valid_twiml(client: FlaskClient) -> None:
    response = client.post("/sms", data={})
    assert response.status_code == 200
    assert len(_messages(response.data)) == 1


def test_binary_form_data(client: FlaskClient) -> None:
    response = client.post(
        "/sms", data=b"Body=%ff%fe%00abc&From=%2B1555",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    _messages(response.data)


def test_get_is_refused_with_a_reason(client: FlaskClient) -> None:
    response = client.get("/sms")
    assert response.status_code == 405
