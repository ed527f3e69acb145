"""The staff console in a real headless Chromium (Debian's package) against a real server."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.frontdesk.conftest import HILLTOP_NUMBER, RIVERSIDE_NUMBER, STAFF, LiveServer, http

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SHOTS = Path("/tmp/calfline-console")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium (scripts/test.sh does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def text_in(server: LiveServer, to: str, sender: str, body: str) -> None:
    form = f"From={sender}&To={to}&Body={body}".replace("+", "%2B").replace(" ", "+")
    status, _, _ = http("POST", server.url + "/sms", form.encode(),
                        {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200


def log_in(browser: Browser, server: LiveServer, clinic: str) -> Page:
    page = browser.new_page(viewport={"width": 1100, "height": 750})
    page.goto(server.url + "/console/")
    expect(page).to_have_url(re.compile(r"/console/login"))
    username, password = STAFF[clinic]
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Suggest a reply")).to_be_visible()
    return page


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_wrong_password_is_refused(browser: Browser, live_server: LiveServer) -> None:
    page = browser.new_page()
    page.goto(server_url := live_server.url + "/console/login")
    shot(page, "login")
    page.get_by_label("Username").fill("frontdesk")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    page.goto(server_url.replace("/login", "/conversations"))
    expect(page).to_have_url(re.compile(r"/console/login"))


def test_paste_a_question_and_copy_the_reply(browser: Browser, live_server: LiveServer) -> None:
    page = log_in(browser, live_server, "riverside")
    page.get_by_label("Patient's message").fill("pt c/o calf cramp right now mid run")
    page.get_by_role("button", name="Suggest reply").click()
    expect(page.locator("#intent")).to_be_visible()
    expect(page.locator("code", has_text="cramp_now").first).to_be_visible()
    reply = page.get_by_label("Suggested reply").input_value()
    assert "stretch" in reply.lower() or "toes" in reply.lower()
    assert page.locator("#urgent-banner").count() == 0
    page.context.grant_permissions(["clipboard-read", "clipboard-write"],
                                   origin=live_server.url)
    page.get_by_role("button", name="Copy reply").click()
    expect(page.locator("#copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == reply
    shot(page, "reply")


def test_red_flag_question_shows_the_urgent_banner(browser: Browser,
                                                   live_server: LiveServer) -> None:
    page = log_in(browser, live_server, "riverside")
    page.get_by_label("Patient's message").fill("her calf is swollen, hot and red since the run")
    page.get_by_role("button", name="Suggest reply").click()
    expect(page.locator("#urgent-banner")).to_contain_text("Red flag")
    expect(page.locator("#care")).to_have_text("urgent")
    expect(page.locator("#signs")).to_contain_text("swelling")
    shot(page, "reply-red-flag")


def test_a_possible_sign_shows_the_check_question(browser: Browser,
                                                  cautious_server: LiveServer) -> None:
    """Staff see the question to ask, the urgent text for YES and the advice for NO."""
    page = log_in(browser, cautious_server, "riverside")
    page.get_by_label("Patient's message").fill("calves tight after my long run")
    page.get_by_role("button", name="Suggest reply").click()
    expect(page.locator("#care")).to_have_text("check")
    expect(page.locator("#check-banner")).to_contain_text("Check needed")
    expect(page.locator("#check-question")).to_contain_text("Quick check")
    assert page.get_by_label("If YES (treat as urgent)").input_value().startswith("Get urgent")
    assert page.get_by_label("If NO").input_value()
    shot(page, "reply-check")


def test_red_flag_conversation_is_marked_and_filterable(browser: Browser,
                                                        live_server: LiveServer) -> None:
    text_in(live_server, RIVERSIDE_NUMBER, "+15551110001", "calf swollen hot and red after run")
    text_in(live_server, RIVERSIDE_NUMBER, "+15551110002", "which shoes for tight calves")
    page = log_in(browser, live_server, "riverside")
    page.get_by_role("link", name="Conversations").click()
    flagged = page.locator("tr", has_text="number ending 0001")
    expect(flagged.locator(".badge.red_flag")).to_have_text("Red flag")
    expect(page.locator("tr", has_text="number ending 0002").locator(".badge")).to_have_count(0)
    shot(page, "conversations")
    page.get_by_role("link", name="Red flag only").click()
    expect(page.locator("tr", has_text="number ending 0001")).to_have_count(1)
    expect(page.locator("tr", has_text="number ending 0002")).to_have_count(0)
    page.locator("tr", has_text="number ending 0001").get_by_role("link").click()
    expect(page.get_by_role("heading")).to_have_text("Conversation with number ending 0001")
    expect(page.locator(".messages li.inbound.flagged")).to_contain_text("calf swollen hot")
    expect(page.locator(".messages li.outbound")).to_contain_text("urgent care")
    shot(page, "conversation")


def test_another_clinics_conversations_stay_hidden(browser: Browser,
                                                   live_server: LiveServer) -> None:
    text_in(live_server, RIVERSIDE_NUMBER, "+15552220003", "my calf is swollen and hot")
    text_in(live_server, HILLTOP_NUMBER, "+15552220004", "calf cramp right now")
    riverside = log_in(browser, live_server, "riverside")
    riverside.goto(live_server.url + "/console/conversations")
    riverside.locator("tr", has_text="number ending 0003").get_by_role("link").click()
    riverside_url = riverside.url
    hilltop = log_in(browser, live_server, "hilltop")
    hilltop.goto(live_server.url + "/console/conversations")
    expect(hilltop.locator("tr", has_text="number ending 0004")).to_have_count(1)
    expect(hilltop.locator("tr", has_text="number ending 0003")).to_have_count(0)
    expect(hilltop.locator("td", has_text=RIVERSIDE_NUMBER)).to_have_count(0)
    response = hilltop.goto(riverside_url)
    assert response is not None and response.status == 404
    expect(hilltop.locator("body")).not_to_contain_text("swollen")
    shot(hilltop, "other-clinic-404")


def test_a_post_without_csrf_token_is_refused(browser: Browser, live_server: LiveServer) -> None:
    page = log_in(browser, live_server, "riverside")
    # A forged form from the same browser session carries the cookie but not the token.
    response = page.request.post(live_server.url + "/console/",
                                 form={"text": "calf cramp", "channel": "sms"})
    assert response.status == 400
    assert "Form expired" in response.text()


def test_a_spanish_question_gets_the_spanish_reply_and_the_english_one_to_copy(
        browser: Browser, live_server: LiveServer) -> None:
    page = log_in(browser, live_server, "riverside")
    page.get_by_label("Patient's message").fill(
        "la paciente dice que se le acalambra la pantorrilla cuando sale a trotar")
    page.get_by_role("button", name="Suggest reply").click()
    expect(page.locator("#language")).to_have_text("Spanish (español)")
    spanish = page.get_by_label("Suggested reply").input_value()
    english = page.get_by_label("The same reply in English").input_value()
    assert "pantorrilla" in spanish and "calf" in english.lower()
    page.get_by_role("button", name="Copy English reply").click()
    shot(page, "reply-spanish")
