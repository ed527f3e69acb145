"""The front desk workflow in a real headless Chromium against a real server process:
inbox acknowledge and close, take over / reply / hand back, the re-send of an urgent
item nobody acknowledged; Twilio's REST API is the local stand-in, which calls the
server's /twilio/status back signed as Twilio does. Screenshots go to docs/screenshots/."""

from __future__ import annotations

import re
import secrets
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from responder.store.inbox_items import InboxItem
from responder.store.models import Message
from tests.conftest import ROOT
from tests.frontdesk.conftest import (
    HILLTOP_NUMBER,
    RIVERSIDE_ALERT_PHONE,
    RIVERSIDE_NUMBER,
    LiveServer,
    WebhookRecorder,
    free_port,
    http,
    start_server,
    start_webhook,
    write_clinics_file,
)
from tests.frontdesk.test_console import browser, log_in  # noqa: F401 - the browser fixture
from tests.twilio_api import FakeTwilio, fake_twilio
from tests.twilio_signing import TOKEN, sign

SCREENSHOTS = ROOT / "docs" / "screenshots"
ACK_SECONDS = 4.0


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookRecorder]:
    recorder, server = start_webhook()
    yield recorder
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def twilio(hook: WebhookRecorder) -> Iterator[FakeTwilio]:
    with fake_twilio(token=TOKEN, owned={RIVERSIDE_NUMBER, HILLTOP_NUMBER},
                     callback_delay=0.3) as api:
        yield api


@pytest.fixture(scope="module")
def server(hook: WebhookRecorder, twilio: FakeTwilio,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("workflow")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    twilio.expected_callback = base + "/twilio/status"
    clinics = write_clinics_file(folder / "clinics.yaml", hook.url, twilio_escalation=True,
                                 first="sms", hilltop_phone=True)
    live = start_server({
        "CALFLINE_CLINICS_FILE": str(clinics),
        "DATABASE_URL": f"sqlite:///{folder / 'calfline.db'}",
        "TWILIO_ACCOUNT_SID": twilio.account, "TWILIO_AUTH_TOKEN": TOKEN,
        "CALFLINE_TWILIO_API_URL": twilio.base_url, "CALFLINE_PUBLIC_BASE_URL": base,
        "CALFLINE_ACK_MINUTES": str(ACK_SECONDS / 60),
    }, folder / "server.log", port=port)
    yield live
    live.stop()


def text_in(server: LiveServer, body: str, sender: str, to: str = RIVERSIDE_NUMBER) -> str | None:
    """A signed inbound SMS; the reply's text, or None for empty TwiML."""
    form = {"From": sender, "To": to, "Body": body,
            "MessageSid": "SM" + secrets.token_hex(16)}
    status, _, reply = http("POST", server.url + "/sms", urllib.parse.urlencode(form).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded",
                             "X-Twilio-Signature": sign(server.url + "/sms", form)})
    assert status == 200
    root = ET.fromstring(reply)
    assert root.tag == "Response"
    messages = root.findall("Message")
    return (messages[0].text or "") if messages else None


def db_rows(server: LiveServer, model: Any, *where: Any) -> list[Any]:
    engine = create_engine(server.env["DATABASE_URL"])
    try:
        with Session(engine) as session:
            found = list(session.scalars(select(model).where(*where).order_by(model.id)))
            session.expunge_all()
            return found
    finally:
        engine.dispose()


def deliveries_about(hook: WebhookRecorder, words: bytes, timeout: float) -> list[Any]:
    """The webhook deliveries whose body holds `words`, once there is one (or time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        with hook.lock:
            found = [d for d in hook.received if words in d["body"]]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def item_card(page: Page, last4: str) -> Any:
    return page.locator("li.item", has_text=f"number ending {last4}")


def test_inbox_acknowledge_and_close(browser: Browser, server: LiveServer,  # noqa: F811
                                     twilio: FakeTwilio) -> None:
    text_in(server, "my calf is swollen hot and red since my flight", "+15558880101")
    text_in(server, "can someone from the clinic call me back", "+15558880102")
    text_in(server, "calf cramp right now", "+15558880103", to=HILLTOP_NUMBER)
    page = log_in(browser, server, "riverside")
    page.get_by_role("link", name="Inbox").click()
    red, callback = item_card(page, "0101"), item_card(page, "0102")
    expect(red.locator(".badge.red_flag")).to_have_text("Red flag")
    expect(red.locator(".badge.urgent")).to_have_text("Urgent")
    expect(red).to_contain_text("+15558880101")  # the number to call back
    expect(callback.locator(".badge.callback")).to_have_text("Callback request")
    expect(page.locator("li.item", has_text="0103")).to_have_count(0)  # hilltop's
    expect(red.locator(".alert-status")).to_have_text(re.compile("queued|sent|delivered"))
    red.get_by_role("button", name="Acknowledge").click()
    red = item_card(page, "0101")
    expect(red.locator(".acknowledged")).to_contain_text("Acknowledged by frontdesk")
    expect(red.get_by_role("button", name="Acknowledge")).to_have_count(0)
    page.reload()
    expect(item_card(page, "0101").locator(".alert-status")).to_have_text("delivered")
    screenshot(page, "inbox.png")
    (row,) = db_rows(server, InboxItem, InboxItem.patient_last4 == "0101")
    assert row.acknowledged_by == "frontdesk" and row.acknowledged_at is not None
    callback = item_card(page, "0102")
    callback.get_by_label("Outcome").select_option(label="Booked")
    callback.get_by_role("button", name="Close").click()
    expect(item_card(page, "0102")).to_have_count(0)
    page.get_by_role("link", name="Closed").click()
    expect(item_card(page, "0102").locator(".closed")).to_contain_text(
        "Closed by frontdesk")
    expect(item_card(page, "0102")).to_contain_text("Booked")
    expect(item_card(page, "0102")).not_to_contain_text("+15558880102")  # number forgotten
    (row,) = db_rows(server, InboxItem, InboxItem.patient_last4 == "0102")
    assert (row.outcome, row.closed_by, row.patient_number) == ("booked", "frontdesk", None)


def test_take_over_reply_and_hand_back(browser: Browser, server: LiveServer,  # noqa: F811
                                       twilio: FakeTwilio) -> None:
    patient = "+15558880201"
    assert text_in(server, "can someone call me back about my calves", patient)
    page = log_in(browser, server, "riverside")
    page.get_by_role("link", name="Inbox").click()
    item_card(page, "0201").get_by_role("link", name="Open conversation").click()
    expect(page.get_by_role("heading")).to_have_text("Conversation with number ending 0201")
    page.get_by_role("button", name="Take over").click()
    expect(page.locator("#takeover-status")).to_contain_text("Taken over by frontdesk")
    # The line is silent now; the console shows the patient's new message by itself.
    assert text_in(server, "are you still there? which shoes should i get", patient) is None
    expect(page.locator("#messages li.inbound", has_text="which shoes")).to_be_visible()
    expect(page.locator("#new-messages")).to_contain_text("1 new message")
    sent_before = len(twilio.messages)
    page.get_by_label("Your reply").fill("Hi, this is Sam at Riverside. I'll call you at 3pm.")
    page.get_by_role("button", name="Send reply").click()
    staff = page.locator("#messages li.staff")
    expect(staff).to_contain_text("frontdesk (staff)")
    expect(staff).to_contain_text("I'll call you at 3pm.")
    (sent,) = twilio.wait_for_messages(sent_before + 1)[sent_before:]
    assert (sent["From"], sent["To"]) == (RIVERSIDE_NUMBER, patient)
    assert sent["Body"] == "Hi, this is Sam at Riverside. I'll call you at 3pm."
    assert sent["StatusCallback"] == server.url + "/twilio/status"
    expect(staff.locator(".delivery")).to_have_text("delivered", timeout=15000)
    answered = [c for c in twilio.callbacks if c["sid"] == sent["sid"]]
    assert {c["answer"] for c in answered} == {204}  # the server checked their signatures
    (stored,) = db_rows(server, Message, Message.twilio_sid == sent["sid"])
    assert stored.staff_user == "frontdesk" and stored.body == sent["Body"]
    # A red flag is still answered at once while taken over.
    urgent = text_in(server, "now my calf is swollen and hot", patient)
    assert urgent and "urgent" in urgent.lower()
    expect(page.locator("#messages li.flagged", has_text="swollen and hot")).to_be_visible()
    screenshot(page, "takeover.png")
    page.get_by_role("link", name="Conversations", exact=True).click()
    expect(page.locator("tr", has_text="number ending 0201").locator(".badge.held")).to_have_text(
        "Taken over by frontdesk")
    page.go_back()
    page.get_by_role("button", name="Hand back to CalfLine").click()
    expect(page.locator("#takeover-status")).to_contain_text("CalfLine answers this patient")
    expect(page.locator("#reply-form")).to_have_count(0)
    assert text_in(server, "which shoes for tight calves", patient)


def test_unacknowledged_urgent_item_is_resent(browser: Browser, server: LiveServer,  # noqa: F811
                                              twilio: FakeTwilio,
                                              hook: WebhookRecorder) -> None:
    with hook.lock:
        hook.received.clear()
    text_in(server, "felt a pop in my calf and i cannot walk", "+15558880301")
    alerts = [m for m in twilio.wait_for_messages(len(twilio.messages) + 1)
              if "felt a pop" in m["Body"]]
    assert [m["To"] for m in alerts] == [RIVERSIDE_ALERT_PHONE]  # first by SMS only
    page = log_in(browser, server, "riverside")
    page.get_by_role("link", name="Inbox").click()
    card = item_card(page, "0301")
    expect(card.locator(".unacknowledged")).to_have_text("Not acknowledged")
    (delivery,) = deliveries_about(hook, b"felt a pop", timeout=ACK_SECONDS + 15)
    # ...then, unacknowledged, by the webhook: the other route
    assert b'"resent": true' in delivery["body"]
    page.reload()
    expect(item_card(page, "0301").locator(".badge.resent")).to_contain_text("Re-sent")
    (row,) = db_rows(server, InboxItem, InboxItem.patient_last4 == "0301")
    assert row.resent_at is not None and row.acknowledged_at is None


def test_clinics_see_only_their_own_and_forms_need_csrf(browser: Browser,  # noqa: F811
                                                        server: LiveServer) -> None:
    text_in(server, "my calf is red and swollen", "+15558880401")
    riverside = log_in(browser, server, "riverside")
    riverside.goto(server.url + "/console/inbox")
    card = item_card(riverside, "0401")
    conversation_url = server.url + str(
        card.get_by_role("link", name="Open conversation").get_attribute("href"))
    (row,) = db_rows(server, InboxItem, InboxItem.patient_last4 == "0401")
    hilltop = log_in(browser, server, "hilltop")
    hilltop.goto(server.url + "/console/inbox")
    expect(item_card(hilltop, "0401")).to_have_count(0)
    response = hilltop.goto(conversation_url)
    assert response is not None and response.status == 404
    token = hilltop.evaluate("document.querySelector('input[name=csrf_token]').value")
    for path in (f"/console/inbox/{row.id}/acknowledge", f"/console/inbox/{row.id}/close",
                 conversation_url.removeprefix(server.url) + "/take-over",
                 conversation_url.removeprefix(server.url) + "/reply",
                 conversation_url.removeprefix(server.url) + "/hand-back"):
        answer = hilltop.request.post(server.url + path, form={
            "csrf_token": token, "outcome": "booked", "text": "hello"})
        assert answer.status == 404, path
        forged = riverside.request.post(server.url + path, form={"outcome": "booked"})
        assert forged.status == 400 and "Form expired" in forged.text(), path
    updates = hilltop.request.get(conversation_url + "/updates")
    assert updates.status == 404
    (row,) = db_rows(server, InboxItem, InboxItem.patient_last4 == "0401")
    assert row.acknowledged_at is None and row.closed_at is None
