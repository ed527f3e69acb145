"""The dashboard and the audit CSV in headless Chromium: what the page shows is what the DB holds.

Rows are seeded through the store (at chosen days) and the SMS webhook; the
expected figures are recounted here from the raw `messages` rows, not taken
from responder.store.clinic_figures.
"""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from responder.dialogue.conversation import ConversationState, Turn
from responder.dialogue.replies import Reply
from responder.nlu.matcher import Match
from responder.store import audit
from responder.store.conversation_store import Inbound
from tests.conftest import ROOT
from tests.frontdesk.conftest import ADMINS, HILLTOP_NUMBER, RIVERSIDE_NUMBER, LiveServer
from tests.frontdesk.test_admin_pages import open_store, sign_in
from tests.frontdesk.test_console import CHROMIUM, CHROMIUM_ARGS, text_in

SCREENSHOT = ROOT / "docs" / "screenshots" / "dashboard.png"
DAYS = 7
# days ago, number, sender, channel, intent, care, reason, reply template
SEED = [
    (0, RIVERSIDE_NUMBER, "+15553330001", "sms", "cramp_now", "self_care", "model",
     "cramp_now.sms"),
    (0, RIVERSIDE_NUMBER, "+15553330002", "voice", "out_of_scope", "none", "model",
     "out_of_scope.voice"),
    (1, RIVERSIDE_NUMBER, "+15553330003", "sms", "post_run_tightness", "check", "model",
     "system.check.sms"),
    (1, RIVERSIDE_NUMBER, "+15553330003", "sms", "red_flag", "urgent", "check_yes",
     "red_flag.urgent.sms"),
    (2, RIVERSIDE_NUMBER, "+15553330004", "api", "shoe_question", "self_care", "model",
     "shoe_question.api"),
    (3, RIVERSIDE_NUMBER, "+15553330005", "sms", "chronic_pain", "check", "model",
     "system.check.sms"),
    (3, RIVERSIDE_NUMBER, "+15553330005", "sms", "chronic_pain", "soon", "check_no",
     "chronic_pain.sms"),
    (4, RIVERSIDE_NUMBER, "+15553330006", "voice", "red_flag", "emergency", "model",
     "red_flag.emergency.voice"),
    (5, RIVERSIDE_NUMBER, "+15553330007", "sms", "hydration", "self_care", "model",
     "hydration.sms"),
    (6, RIVERSIDE_NUMBER, "+15553330008", "sms", "post_run_tightness", "check", "model",
     "system.check.sms"),
    (2, HILLTOP_NUMBER, "+15553330009", "sms", "out_of_scope", "none", "model",
     "out_of_scope.sms"),
    (20, RIVERSIDE_NUMBER, "+15553330010", "sms", "cramp_now", "self_care", "model",
     "cramp_now.sms"),
]
FORMULAS = {"actor": '=HYPERLINK("http://evil.example","x")', "subject": "+SUM(1,2)",
            "detail": "@cmd|' /C calc'!A0"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium (scripts/test.sh does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def seed(server: LiveServer) -> None:
    store, today = open_store(server), datetime.now(UTC).replace(hour=9, minute=0)
    try:
        for ago, number, sender, channel, intent, care, reason, template in SEED:
            turn = Turn(Match("seeded", "seeded", intent, 0.9, reason=reason, care=care),
                        Reply("a reply", template), ConversationState())
            store.record(Inbound(channel, sender, number, "seeded"), turn,
                         now=today - timedelta(days=ago))
    finally:
        store.close()
    text_in(server, RIVERSIDE_NUMBER, "+15553330011", "what is the weather tomorrow")


def recount(server: LiveServer) -> dict[str, Counter[tuple[str, str]]]:
    """The riverside figures of the last DAYS days, from the raw rows."""
    first = (datetime.now(UTC).date() - timedelta(days=DAYS - 1)).isoformat()
    store = open_store(server)
    try:
        with store.engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT m.id, m.conversation_id, m.direction, substr(m.created_at, 1, 10),"
                " m.channel, m.intent, m.care, m.check_answer, m.template_id FROM messages m"
                " JOIN conversations c ON c.id = m.conversation_id WHERE c.our_number = ?"
                " ORDER BY m.id", (RIVERSIDE_NUMBER,)).all()
    finally:
        store.close()
    got: dict[str, Counter[tuple[str, str]]] = {
        k: Counter() for k in ("channel", "care", "intent", "checks")}
    for mid, conv, direction, day, channel, intent, care, _, template in rows:
        if day < first:
            continue
        if direction == "in" and intent:
            got["channel"][(day, channel)] += 1
            got["care"][(day, care)] += 1
            got["intent"][("", intent)] += 1
        if direction == "out" and (template or "").startswith("system.check."):
            later = [r for r in rows if r[1] == conv and r[2] == "in" and r[0] > mid]
            answer = later[0][7] if later else None
            got["checks"][("", answer or ("other" if later else "no_reply"))] += 1
    return got


def shown(page: Page, chart: int) -> Counter[tuple[str, str]]:
    """(day, key) -> count from a chart's figures table."""
    figure = page.locator(f"#chart-{chart}")
    figure.locator("summary").click()
    counted: Counter[tuple[str, str]] = Counter()
    for row in figure.locator("tbody tr").all():
        day, key = row.get_attribute("data-day") or "", row.get_attribute("data-key") or ""
        if value := int(row.locator(".value").inner_text()):
            counted[(day, key)] = value
    svg_total = sum(int(v or 0) for v in figure.locator("rect.bar").evaluate_all(
        "bars => bars.map(b => b.getAttribute('data-value'))"))
    assert svg_total == sum(counted.values())  # the bars draw what the table lists
    return counted


def test_dashboard_shows_what_the_database_holds(browser: Browser,
                                                 admin_server: LiveServer) -> None:
    seed(admin_server)
    expected = recount(admin_server)
    page = sign_in(browser, admin_server, *ADMINS["riverside"])
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_label("Last").select_option(str(DAYS))
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    total = sum(expected["channel"].values())
    out_of_scope = expected["intent"][("", "out_of_scope")]
    assert page.locator("#total-messages").inner_text() == str(total)
    assert page.locator("#out-of-scope-rate").inner_text() == f"{100 * out_of_scope / total:.1f}%"
    assert page.locator("#checks-asked").inner_text() == str(sum(expected["checks"].values()))
    assert page.locator("#ack-median").inner_text() == "no data"  # no inbox table here
    assert shown(page, 1) == expected["channel"]
    assert shown(page, 2) == expected["care"]
    assert shown(page, 3) == expected["intent"]
    assert shown(page, 4) == expected["checks"]
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    for figure in page.locator("details").all():
        figure.evaluate("d => d.open = false")
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert downloaded_figures(page) == {
        "channel": expected["channel"], "care": expected["care"],
        "intent": expected["intent"], "checks": expected["checks"], "total": total}


def downloaded_figures(page: Page) -> dict[str, object]:
    """The dashboard's CSV, read back into the shape recount() gives."""
    with page.expect_download() as download:
        page.get_by_role("link", name="Download these figures (CSV)").click()
    with open(download.value.path(), newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))

    def per(figure: str, daily: bool) -> Counter[tuple[str, str]]:
        return Counter({(r["day"] if daily else "", r["key"]): int(r["value"]) for r in rows
                        if r["figure"] == figure and (r["day"] != "total") == daily})

    return {"channel": per("messages_by_channel", True), "care": per("messages_by_care", True),
            "intent": per("messages_by_intent", False), "checks": per("checks_by_answer", False),
            "total": next(int(r["value"]) for r in rows if r["figure"] == "messages")}


def test_audit_csv_download_matches_the_trail(browser: Browser, admin_server: LiveServer,
                                              tmp_path: Path) -> None:
    store = open_store(admin_server)
    try:
        audit.record(store.engine, "riverside", FORMULAS["actor"], audit.REPLY,
                     FORMULAS["subject"], FORMULAS["detail"])
    finally:
        store.close()
    page = sign_in(browser, admin_server, *ADMINS["riverside"])
    page.get_by_role("link", name="Audit trail").click()
    expect(page.locator("#audit-rows")).to_contain_text(FORMULAS["actor"])  # shown as text
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    path = tmp_path / "audit.csv"
    download.value.save_as(path)
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    store = open_store(admin_server)
    try:
        since = datetime.now(UTC) - timedelta(days=40)
        trail = list(audit.stream(store.engine, "riverside", since=since))
    finally:
        store.close()
    defused = {k: "'" + v for k, v in FORMULAS.items()}
    assert [(r["actor"], r["action"], r["subject"], r["detail"]) for r in rows] == [
        (defused.get("actor", e.actor) if e.actor == FORMULAS["actor"] else e.actor, e.action,
         defused["subject"] if e.subject == FORMULAS["subject"] else e.subject,
         defused["detail"] if e.detail == FORMULAS["detail"] else e.detail) for e in trail]
    assert rows[-1]["action"] == audit.EXPORT_AUDIT
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())
