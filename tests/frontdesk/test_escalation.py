"""Escalation to a clinic's webhook (a real HTTP server on 127.0.0.1): once, signed, retried,
surviving a restart, and never in the way of the patient's reply."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from responder.frontdesk.escalation import sign
from tests.frontdesk.conftest import (
    HILLTOP_NUMBER,
    RIVERSIDE_NUMBER,
    WEBHOOK_SECRET,
    LiveServer,
    WebhookRecorder,
    free_port,
    http,
    start_server,
    start_webhook,
    write_clinics_file,
)


@pytest.fixture(scope="module")
def shared_hook() -> Iterator[WebhookRecorder]:
    recorder, server = start_webhook()
    yield recorder
    server.shutdown()
    server.server_close()


@pytest.fixture
def hook(shared_hook: WebhookRecorder) -> WebhookRecorder:
    """The module's webhook, emptied and healthy at the start of each test."""
    with shared_hook.lock:
        shared_hook.received.clear()
        shared_hook.fail_next, shared_hook.delay = 0, 0.0
    return shared_hook


@pytest.fixture(scope="module")
def server(shared_hook: WebhookRecorder, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("escalation")
    live = start_server(_env(folder, shared_hook.url), folder / "server.log")
    yield live
    live.stop()


def _env(folder: Path, webhook_url: str) -> dict[str, str]:
    clinics = write_clinics_file(folder / "clinics.yaml", webhook_url)
    return {"CALFLINE_CLINICS_FILE": str(clinics),
            "DATABASE_URL": f"sqlite:///{folder / 'calfline.db'}"}


def sms(server: LiveServer, body: str, sid: str, to: str = RIVERSIDE_NUMBER,
        sender: str = "+15553334444") -> float:
    """Post one inbound SMS as Twilio would; return how long the reply took."""
    form = urllib.parse.urlencode({"From": sender, "To": to, "Body": body, "MessageSid": sid})
    started = time.monotonic()
    status, _, reply = http("POST", server.url + "/sms", form.encode(),
                            {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and b"<Response>" in reply
    return time.monotonic() - started


def _verify(delivery: dict[str, object]) -> dict[str, object]:
    headers = {k.lower(): v for k, v in dict(delivery["headers"]).items()}  # type: ignore[call-overload]
    parts = dict(p.split("=", 1) for p in headers["x-calfline-signature"].split(","))
    body = delivery["body"]
    assert isinstance(body, bytes)
    assert parts["v1"] == sign(WEBHOOK_SECRET, int(parts["t"]), body)
    return dict(json.loads(body))


def test_red_flag_notifies_the_clinic_once(server: LiveServer, hook: WebhookRecorder) -> None:
    sms(server, "my calf is swollen hot and red after my run", "SM" + "1" * 32)
    sms(server, "my calf is swollen hot and red after my run", "SM" + "1" * 32)  # Twilio retry
    sms(server, "calf cramp right now", "SM" + "2" * 32)
    (delivery,) = hook.wait_for(1)
    payload = _verify(delivery)
    assert payload["intent"] == "red_flag" and payload["clinic_id"] == "riverside"
    assert payload["patient_number"] == "+15553334444" and payload["our_number"] == RIVERSIDE_NUMBER
    assert "swollen" in str(payload["message"])
    time.sleep(1.5)  # room for a wrong second delivery to show up
    assert len(hook.received) == 1


def test_chronic_pain_only_when_the_clinic_asks(server: LiveServer,
                                                hook: WebhookRecorder) -> None:
    sms(server, "calf tightness keeps coming back for months every run", "SM" + "3" * 32)
    sms(server, "my calf is swollen and hot", "SM" + "4" * 32, to="+15559990000")  # no clinic
    time.sleep(1.5)
    assert hook.received == []


def test_failed_delivery_is_retried_with_backoff(server: LiveServer,
                                                 hook: WebhookRecorder) -> None:
    hook.fail_next = 2
    sms(server, "felt a pop in my calf and cannot walk", "SM" + "5" * 32)
    (delivery,) = hook.wait_for(1)
    assert _verify(delivery)["intent"] == "red_flag"
    assert hook.fail_next == 0  # both failures were seen before the success


def test_patient_reply_does_not_wait_for_the_webhook(server: LiveServer,
                                                     hook: WebhookRecorder) -> None:
    hook.delay = 3.0
    elapsed = sms(server, "calf swollen and red, short of breath", "SM" + "6" * 32)
    assert elapsed < 1.5
    assert len(hook.wait_for(1, timeout=15)) == 1


def test_pending_notifications_survive_a_restart(hook: WebhookRecorder, tmp_path: Path) -> None:
    dead_url = f"http://127.0.0.1:{free_port()}/alerts"  # nothing listens here
    first = start_server(_env(tmp_path, dead_url), tmp_path / "first.log")
    try:
        sms(first, "my calf is hot and swollen", "SM" + "7" * 32)
        time.sleep(0.5)
    finally:
        first.stop()
    second = start_server(_env(tmp_path, hook.url), tmp_path / "second.log")
    try:
        (delivery,) = hook.wait_for(1)
        assert "hot and swollen" in str(_verify(delivery)["message"])
        sms(second, "my calf is hot and swollen", "SM" + "7" * 32)  # re-sent after restart
        time.sleep(1.5)
        assert len(hook.received) == 1
    finally:
        second.stop()


def test_hilltop_without_a_webhook_gets_nothing_posted(server: LiveServer,
                                                       hook: WebhookRecorder) -> None:
    sms(server, "my calf is swollen and hot", "SM" + "8" * 32, to=HILLTOP_NUMBER)
    time.sleep(1.0)
    assert hook.received == []
