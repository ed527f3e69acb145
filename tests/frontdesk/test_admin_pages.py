"""Admin pages against a real server: admins only, each clinic its own rows, audited sign-ins."""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from responder import create_app
from responder.store import audit
from responder.store.conversation_store import ConversationStore
from tests.frontdesk.conftest import (
    ADMIN_HASH_SECRET,
    ADMINS,
    HILLTOP_NUMBER,
    RIVERSIDE_NUMBER,
    STAFF,
    LiveServer,
    write_clinics_file,
)
from tests.frontdesk.test_console import CHROMIUM, CHROMIUM_ARGS, text_in
from tests.log_capture import captured

ADMIN_PAGES = ("/console/admin/dashboard", "/console/admin/dashboard.csv",
               "/console/admin/audit", "/console/admin/audit.csv")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium (scripts/test.sh does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def sign_in(browser: Browser, server: LiveServer, username: str, password: str) -> Page:
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    page.goto(server.url + "/console/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Suggest a reply")).to_be_visible()
    return page


def open_store(server: LiveServer) -> ConversationStore:
    """The server's own database, as the tests' second client."""
    return ConversationStore.open(server.env["DATABASE_URL"], ADMIN_HASH_SECRET)


def audit_csv(page: Page, server: LiveServer) -> list[dict[str, str]]:
    response = page.request.get(server.url + "/console/admin/audit.csv")
    assert response.status == 200 and response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text())))


def test_staff_are_refused_admin_pages(browser: Browser, admin_server: LiveServer) -> None:
    page = sign_in(browser, admin_server, *STAFF["riverside"])
    expect(page.get_by_role("link", name="Dashboard")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit trail")).to_have_count(0)
    for path in ADMIN_PAGES:
        response = page.request.get(admin_server.url + path)
        assert response.status == 403, path
        assert "figure,day" not in response.text() and "time_utc" not in response.text()
    page.goto(admin_server.url + "/console/admin/dashboard")
    expect(page.get_by_role("heading", name="Admins only")).to_be_visible()


def test_strangers_are_sent_to_sign_in(browser: Browser, admin_server: LiveServer) -> None:
    page = browser.new_page()
    for path in ADMIN_PAGES:
        response = page.request.get(admin_server.url + path, max_redirects=0)
        assert response.status == 302 and "/console/login" in response.headers["location"]


def test_each_admin_sees_only_their_clinic(browser: Browser, admin_server: LiveServer) -> None:
    text_in(admin_server, RIVERSIDE_NUMBER, "+15552220001", "calf cramp right now")
    text_in(admin_server, HILLTOP_NUMBER, "+15552220002", "which shoes for tight calves")
    river = sign_in(browser, admin_server, *ADMINS["riverside"])
    river.get_by_role("link", name="Conversations").click()
    river.locator("tr", has_text="number ending 0001").get_by_role("link").click()
    conversation_path = river.url.removeprefix(admin_server.url)
    hill = sign_in(browser, admin_server, *ADMINS["hilltop"])
    assert hill.request.get(admin_server.url + conversation_path).status == 404
    river_rows, hill_rows = audit_csv(river, admin_server), audit_csv(hill, admin_server)
    viewed = [r for r in river_rows if r["action"] == audit.VIEW_CONVERSATION]
    assert viewed and viewed[-1]["subject"] == "conversation:" + conversation_path.split("/")[-1]
    assert viewed[-1]["actor"] == ADMINS["riverside"][0]
    assert {r["actor"] for r in hill_rows} <= {ADMINS["hilltop"][0], STAFF["hilltop"][0]}
    assert {r["actor"] for r in river_rows}.isdisjoint({ADMINS["hilltop"][0]})
    figures = hill.request.get(admin_server.url + "/console/admin/dashboard.csv?days=1").text()
    rows = {(r["figure"], r["key"]): r["value"] for r in csv.DictReader(io.StringIO(figures))
            if r["day"] == "total"}
    store = open_store(admin_server)
    try:
        with store.engine.connect() as connection:
            expected = connection.exec_driver_sql(
                "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id"
                " WHERE c.our_number = ? AND m.direction = 'in'", (HILLTOP_NUMBER,)).scalar()
    finally:
        store.close()
    assert rows[("messages", "all")] == str(expected) and expected >= 1


def test_sign_ins_and_failures_are_audited(browser: Browser, admin_server: LiveServer) -> None:
    username = STAFF["riverside"][0]
    page = browser.new_page()
    page.goto(admin_server.url + "/console/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    admin = sign_in(browser, admin_server, *ADMINS["riverside"])
    rows = audit_csv(admin, admin_server)
    failed = [r for r in rows if r["action"] == audit.SIGN_IN_FAILED]
    assert failed and failed[-1]["actor"] == username and failed[-1]["detail"] == "ip=127.0.0.1"
    signed_in = [r for r in rows if r["action"] == audit.SIGN_IN]
    assert signed_in[-1]["actor"] == ADMINS["riverside"][0]



def test_an_unknown_username_is_not_stored(browser: Browser, admin_server: LiveServer) -> None:
    """It is often a password typed in the wrong box; the attempt is kept, the text is not."""
    typed = "my-Secret-passw0rd"
    page = browser.new_page()
    page.goto(admin_server.url + "/console/login")
    page.get_by_label("Username").fill(typed)
    page.get_by_label("Password").fill("anything")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    store = open_store(admin_server)
    try:
        with store.engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT clinic_id, actor, action, subject, detail FROM audit_events").all()
    finally:
        store.close()
    assert ("", audit.UNKNOWN_ACTOR, audit.SIGN_IN_FAILED, "", "ip=127.0.0.1") in rows
    assert not any(typed in " ".join(row) for row in rows)


def test_forms_need_the_csrf_token(browser: Browser, admin_server: LiveServer) -> None:
    page = sign_in(browser, admin_server, *ADMINS["riverside"])
    forged = page.request.post(admin_server.url + "/console/logout", form={}, max_redirects=0)
    assert forged.status == 400 and "Form expired" in forged.text()
    assert page.request.get(admin_server.url + "/console/admin/audit").status == 200
    login = browser.new_page().request.post(
        admin_server.url + "/console/login", max_redirects=0,
        form={"username": ADMINS["riverside"][0], "password": ADMINS["riverside"][1]})
    assert login.status == 400


@pytest.mark.parametrize(("query", "reason"), [
    ("/dashboard?days=0", "days"), ("/dashboard?days=x", "days"),
    ("/dashboard?to=2026-13-01", "to"), ("/audit?from=yesterday", "from"),
    ("/audit?from=2026-11-30&to=2026-11-01", "from"), ("/audit.csv?action=drop", "action"),
])
def test_bad_filters_get_a_400_with_the_reason(browser: Browser, admin_server: LiveServer,
                                               query: str, reason: str) -> None:
    page = sign_in(browser, admin_server, *ADMINS["hilltop"])
    response = page.request.get(admin_server.url + "/console/admin" + query)
    assert response.status == 400
    assert re.search(rf"\b{reason}\b", response.text())


def test_a_failed_audit_write_is_logged_and_sign_in_goes_on(tmp_path: Path) -> None:
    """The database refusing the audit row must not lock staff out; the log keeps the event."""
    clinics = write_clinics_file(tmp_path / "clinics.yaml", "http://127.0.0.1:9/alerts")
    app = create_app({"TESTING": True, "CLINICS_FILE": str(clinics), "SECRET_KEY": "k",
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
                      "SPOOL_DIR": str(tmp_path / "spool"), "ESCALATION_WORKER": "off"})
    store = app.extensions["calfline_store"]
    try:
        with store.engine.begin() as connection:  # the table is gone: every insert fails
            connection.exec_driver_sql("ALTER TABLE audit_events RENAME TO audit_elsewhere")
        client = app.test_client()
        page = client.get("/console/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        username, password = STAFF["riverside"]
        with captured("calfline.audit") as lines:
            response = client.post("/console/login", data={
                "username": username, "password": password, "csrf_token": token.group(1)})
        assert response.status_code == 302
        (record,) = lines.records
        assert record.levelname == "ERROR"
        assert (record.audit_action, record.audit_actor) == (audit.SIGN_IN, username)
    finally:
        store.close()
