"""The inbox on SQLite and PostgreSQL: what needs a person, acknowledged, closed, re-sent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from responder.dialogue.respond import Responder
from responder.frontdesk import inbox
from responder.frontdesk.escalation import deliver_due
from responder.frontdesk.inbox import resend_overdue
from responder.nlu.matcher import Thresholds
from responder.store.conversation_store import utcnow
from tests.frontdesk.conftest import (
    HILLTOP_NUMBER,
    RIVERSIDE_ALERT_PHONE,
    RIVERSIDE_NUMBER,
    WebhookRecorder,
)
from tests.frontdesk.workflow_helpers import alerts, items, text_in
from tests.twilio_api import FakeTwilio

PATIENT = "+15557770101"


@pytest.fixture
def app(make_app: Callable[..., Flask], workflow_config: dict[str, Any],
        webhook: WebhookRecorder) -> Flask:
    with webhook.lock:
        webhook.received.clear()
    return make_app(**workflow_config)


def test_each_kind_of_item_once(app: Flask) -> None:
    text_in(app, "my calf is swollen hot and red", "SM" + "1" * 32, PATIENT, RIVERSIDE_NUMBER)
    text_in(app, "my calf is swollen hot and red", "SM" + "1" * 32, PATIENT, RIVERSIDE_NUMBER)
    text_in(app, "can someone call me back please", "SM" + "2" * 32, PATIENT, RIVERSIDE_NUMBER)
    text_in(app, "calf cramp right now", "SM" + "3" * 32, PATIENT, RIVERSIDE_NUMBER)
    text_in(app, "calf tightness keeps coming back for months", "SM" + "4" * 32, PATIENT,
            RIVERSIDE_NUMBER)  # riverside does not ask for chronic pain
    text_in(app, "calf tightness keeps coming back for months", "SM" + "5" * 32, PATIENT,
            HILLTOP_NUMBER)  # hilltop does
    text_in(app, "can someone call me back please", "SM" + "6" * 32, PATIENT, "+15559990000")
    found = [(i.clinic_id, i.kind, i.urgent) for i in items(app)]
    assert found == [("riverside", "red_flag", True), ("riverside", "callback", False),
                     ("hilltop", "chronic_pain", False)]
    first = items(app)[0]
    assert first.patient_number == PATIENT and first.patient_last4 == "0101"
    assert first.conversation_id and "swollen" in first.body


def test_check_answered_yes_is_urgent(make_app: Callable[..., Flask],
                                      workflow_config: dict[str, Any],
                                      responder: Responder) -> None:
    cautious = Responder(responder.catalog, Thresholds(urgent=1.01, check=0.0))
    app = make_app(**workflow_config, RESPONDER=cautious)
    assert "YES or NO" in (text_in(app, "my calves feel kind of tight", "SM" + "7" * 32,
                                   PATIENT, RIVERSIDE_NUMBER) or "")
    assert items(app) == []
    text_in(app, "yes", "SM" + "8" * 32, PATIENT, RIVERSIDE_NUMBER)
    ((kind, urgent),) = [(i.kind, i.urgent) for i in items(app)]
    assert (kind, urgent) == ("check_yes", True)


def test_acknowledge_then_close(app: Flask) -> None:
    text_in(app, "felt a pop in my calf and cannot walk", "SM" + "a" * 32, PATIENT,
            RIVERSIDE_NUMBER)
    (item,) = items(app)
    engine = app.extensions["calfline_store"].engine
    assert inbox.acknowledge(engine, "hilltop", item.id, "hilltop") is None  # not theirs
    seen = inbox.acknowledge(engine, "riverside", item.id, "frontdesk")
    assert seen is not None and seen.acknowledged_by == "frontdesk" and seen.acknowledged_at
    again = inbox.acknowledge(engine, "riverside", item.id, "someone-else")
    assert again is not None and again.acknowledged_by == "frontdesk"  # the first one stands
    with pytest.raises(inbox.InboxError):
        inbox.close(engine, "riverside", item.id, "frontdesk", "vanished")
    assert inbox.close(engine, "hilltop", item.id, "hilltop", "booked") is None
    closed = inbox.close(engine, "riverside", item.id, "frontdesk", "called_back")
    assert closed is not None and closed.outcome == "called_back"
    assert closed.closed_by == "frontdesk" and closed.patient_number is None
    with pytest.raises(inbox.InboxError, match="already closed"):
        inbox.close(engine, "riverside", item.id, "frontdesk", "booked")
    assert inbox.inbox_items(engine, "riverside") == []
    assert [v.item.id for v in inbox.inbox_items(engine, "riverside", closed=True)] == [item.id]
    assert inbox.inbox_items(engine, "hilltop", closed=True) == []


def test_unacknowledged_urgent_item_is_resent_by_the_other_route(
        make_app: Callable[..., Flask], workflow_config: dict[str, Any], twilio: FakeTwilio,
        webhook: WebhookRecorder, tmp_path: Any) -> None:
    from tests.frontdesk.conftest import write_clinics_file

    clinics = write_clinics_file(tmp_path / "first-sms.yaml", webhook.url,
                                 twilio_escalation=True, first="sms")
    app = make_app(**{**workflow_config, "CLINICS_FILE": str(clinics)})
    with webhook.lock:
        webhook.received.clear()
    text_in(app, "my calf is swollen and hot", "SM" + "b" * 32, PATIENT, RIVERSIDE_NUMBER)
    text_in(app, "calf is red and swollen too", "SM" + "c" * 32, "+15557770202",
            RIVERSIDE_NUMBER)
    assert [a.target for a in alerts(app)] == ["sms", "sms"]  # first by SMS only
    assert deliver_due(app) == 2
    assert [m["To"] for m in twilio.wait_for_messages(2)] == [RIVERSIDE_ALERT_PHONE] * 2
    first, second = items(app)
    engine = app.extensions["calfline_store"].engine
    inbox.acknowledge(engine, "riverside", second.id, "frontdesk")
    assert resend_overdue(app, utcnow() + timedelta(minutes=5)) == 0  # not overdue yet
    later = utcnow() + timedelta(minutes=11)  # CALFLINE_ACK_MINUTES defaults to 10
    assert resend_overdue(app, later) == 1
    assert resend_overdue(app, later) == 0  # marked: never twice
    resent = [a for a in alerts(app) if a.event_key == f"resend-{first.id}"]
    assert [a.target for a in resent] == ["webhook"]
    deliver_due(app)
    (delivery,) = webhook.wait_for(1)
    assert b'"resent": true' in delivery["body"] and b"swollen and hot" in delivery["body"]
    assert b'"patient_number": "+15557770101"' in delivery["body"]
    first, second = items(app)
    assert first.resent_at is not None and second.resent_at is None


def test_items_survive_a_restart(make_app: Callable[..., Flask],
                                 workflow_config: dict[str, Any]) -> None:
    app = make_app(**workflow_config)
    text_in(app, "please can someone call me back", "SM" + "d" * 32, PATIENT, RIVERSIDE_NUMBER)
    app.extensions["calfline_store"].close()
    again = make_app(**workflow_config)  # a new process on the same database
    (item,) = inbox.inbox_items(again.extensions["calfline_store"].engine, "riverside")
    assert item.item.kind == "callback" and item.item.patient_number == PATIENT
