"""Delivery you can see, on SQLite and PostgreSQL: Twilio's signed status callbacks on
/twilio/status, kept once per (MessageSid, status), and a failed alert SMS that falls
back to the clinic's webhook or is marked in the inbox."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from responder.frontdesk.escalation import deliver_due
from responder.frontdesk.inbox import inbox_items
from tests.frontdesk.conftest import (
    HILLTOP_ALERT_PHONE,
    HILLTOP_NUMBER,
    RIVERSIDE_NUMBER,
    WebhookRecorder,
    write_clinics_file,
)
from tests.frontdesk.workflow_helpers import alerts, items, status_callback, statuses, text_in
from tests.twilio_api import FakeTwilio

SID = "SM" + "ab" * 16
PATIENT = "+15557770505"


@pytest.fixture
def app(make_app: Callable[..., Flask], workflow_config: dict[str, Any],
        webhook: WebhookRecorder, tmp_path: Path) -> Flask:
    """Riverside alerts by SMS first, its webhook standing by; hilltop by SMS only."""
    clinics = write_clinics_file(tmp_path / "sms-first.yaml", webhook.url,
                                 twilio_escalation=True, first="sms", hilltop_phone=True)
    with webhook.lock:
        webhook.received.clear()
    return make_app(**{**workflow_config, "CLINICS_FILE": str(clinics)})


def test_status_callbacks_are_kept_once(app: Flask) -> None:
    assert status_callback(app, SID, "sent") == 204
    assert status_callback(app, SID, "delivered") == 204
    assert status_callback(app, SID, "delivered") == 204  # Twilio may send it again
    assert statuses(app, SID) == ["sent", "delivered"]


@pytest.mark.parametrize(
    ("form", "signed", "status"),
    [({"MessageSid": SID, "MessageStatus": "delivered"}, False, 403),
     ({"MessageSid": "SM123", "MessageStatus": "delivered"}, True, 400),
     ({"MessageStatus": "delivered"}, True, 400),
     ({"MessageSid": SID, "MessageStatus": "exploded"}, True, 400),
     ({"MessageSid": SID, "MessageStatus": "failed", "ErrorCode": "x' OR 1=1"}, True, 400)],
)
def test_bad_callbacks_are_refused_with_a_reason(app: Flask, form: dict[str, str],
                                                 signed: bool, status: int) -> None:
    form = dict(form)  # the same case runs on both databases
    sid, state = form.pop("MessageSid", ""), form.pop("MessageStatus")
    assert status_callback(app, sid, state, signed=signed, **form) == status
    assert statuses(app, SID) == []


def test_alert_sms_goes_out_with_a_status_callback(app: Flask, twilio: FakeTwilio) -> None:
    text_in(app, "my calf is swollen hot and red", "SM" + "1" * 32, PATIENT, HILLTOP_NUMBER)
    assert deliver_due(app) == 1
    (sent,) = twilio.messages
    assert (sent["From"], sent["To"]) == (HILLTOP_NUMBER, HILLTOP_ALERT_PHONE)
    assert "RED FLAG" in sent["Body"] and PATIENT in sent["Body"]
    (alert,) = alerts(app)
    assert alert.twilio_sid == sent["sid"] and alert.status == "sent"
    status_callback(app, sent["sid"], "sent")
    status_callback(app, sent["sid"], "delivered")
    (view,) = inbox_items(app.extensions["calfline_store"].engine, "hilltop")
    assert view.alert_status == "delivered" and view.item.alert_failed_at is None


def test_failed_alert_sms_falls_back_to_the_webhook(app: Flask, twilio: FakeTwilio,
                                                    webhook: WebhookRecorder) -> None:
    text_in(app, "felt a pop in my calf and cannot walk", "SM" + "2" * 32, PATIENT,
            RIVERSIDE_NUMBER)
    deliver_due(app)
    (sent,) = twilio.messages
    assert [a.target for a in alerts(app)] == ["sms"]
    assert status_callback(app, sent["sid"], "undelivered", ErrorCode="30003") == 204
    assert status_callback(app, sent["sid"], "undelivered", ErrorCode="30003") == 204
    assert [a.target for a in alerts(app)] == ["sms", "webhook"]  # once, however often told
    deliver_due(app)
    (delivery,) = webhook.wait_for(1)
    assert b"felt a pop" in delivery["body"] and PATIENT.encode() in delivery["body"]
    (item,) = items(app)
    assert item.alert_failed_at is None


def test_failed_alert_sms_without_a_webhook_is_marked(app: Flask, twilio: FakeTwilio) -> None:
    text_in(app, "my calf is swollen hot and red", "SM" + "3" * 32, PATIENT, HILLTOP_NUMBER)
    deliver_due(app)
    (sent,) = twilio.messages
    status_callback(app, sent["sid"], "failed", ErrorCode="30003")
    (view,) = inbox_items(app.extensions["calfline_store"].engine, "hilltop")
    assert view.item.alert_failed_at is not None and view.alert_status == "failed"


def test_an_alert_twilio_keeps_refusing_falls_back(make_app: Callable[..., Flask],
                                                   app: Flask, twilio: FakeTwilio,
                                                   webhook: WebhookRecorder) -> None:
    app.config["ESCALATION_MAX_ATTEMPTS"] = 1
    twilio.refuse_next.append(21211)
    text_in(app, "my calf is swollen and hot", "SM" + "4" * 32, PATIENT, RIVERSIDE_NUMBER)
    deliver_due(app)  # the SMS fails for good: the webhook is queued and delivered
    deliver_due(app)
    assert [(a.target, a.status) for a in alerts(app)] == [("sms", "failed"), ("webhook", "sent")]
    assert len(webhook.wait_for(1)) == 1
