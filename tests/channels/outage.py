"""One outage, start to finish: what the fault tests (and bench/faults.py) send and check.

    figures = run_outage(server, lambda: database_url, hook, breaks=proxy.freeze,
                         heals=proxy.heal, dependency="database")

Before: a sender opts out while all is well. During (`seconds` at `rate` signed
webhooks a second): ordinary texts from many senders, a red flag on a clinic's
number and Twilio's re-sent copy of it, a STOP and a later text from that sender,
a text from the sender who opted out before, a red flag in a phone call,
"more" and YES (whose context is in the database). After: every webhook got a 200 with
TwiML within the budget; once /readyz says ready: one record per MessageSid and
call turn, one clinic alert per red flag (text and call), both senders opted out
and silent, one warning per worker when it broke and one when it was back, and
no traceback.
"""

from __future__ import annotations

import json
import re
import secrets
import statistics
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select

from responder.store.conversation_store import ConversationStore, SenderHasher
from responder.store.database import open_engine
from responder.store.models import Message
from tests.frontdesk.conftest import RIVERSIDE_NUMBER, WebhookRecorder
from tests.servers import RunningServer
from tests.signed_traffic import Sent, SignedTraffic, Webhook

TOKEN = "fault-test-auth-token"
SECRET = "fault-test-hash-secret"
YES_INDEX = 13  # the webhook that says YES: maybe to a check question the database holds
BUDGET = 5.0  # CALFLINE_WEBHOOK_BUDGET as shipped
LINE = "+15550007000"
ORDINARY = ["calf cramp right now what do i do", "my calves are tight after my long run",
            "what shoes are good for tight calves", "how much water should i drink"]
RED_FLAG = "my calf is swollen hot and red and it hurts to walk"


def sms(sender: str, body: str, sid: str, to: str = LINE) -> Webhook:
    """A signed-to-be incoming text, with Twilio's usual fields."""
    return Webhook({"From": sender, "To": to, "Body": body, "MessageSid": sid,
                    "AccountSid": "AC" + "0" * 32, "NumMedia": "0"})


def call_turn(sender: str, speech: str, call_sid: str) -> Webhook:
    """The first answer in a call to the clinic's number."""
    return Webhook({"From": sender, "To": RIVERSIDE_NUMBER, "CallSid": call_sid,
                    "SpeechResult": speech, "Confidence": "0.9"},
                   path="/voice/answer?turn=1&tries=0")


@dataclass
class Plan:
    """The outage's webhooks and who is who among the senders."""

    run: str
    webhooks: list[Webhook]
    silent: set[int]  # indexes that must get an empty <Response/> (opted out)
    red_sender: str
    caller: str
    stop_sender: str
    opted_before: str


def plan(seconds: float, rate: float) -> Plan:
    """Webhooks for `seconds` at `rate` a second (at least 20), with the cases above."""
    run = f"{secrets.randbelow(900) + 100}"
    count = max(20, int(seconds * rate))
    sender = [f"+1555{run}{n:04d}" for n in range(count)]
    webhooks = [sms(sender[n], ORDINARY[n % len(ORDINARY)], f"SM{run}{n:027d}")
                for n in range(count)]
    red_sender, caller = f"+1555{run}9901", f"+1555{run}9902"
    stop_sender, opted_before = f"+1555{run}9903", f"+1555{run}9904"
    red = sms(red_sender, RED_FLAG, f"SM{run}red{0:024d}", to=RIVERSIDE_NUMBER)
    webhooks[2] = red
    webhooks[3] = sms(stop_sender, "STOP", f"SM{run}stop{0:023d}")
    webhooks[5] = Webhook(dict(red.form))  # Twilio re-sends a slow one: same MessageSid
    webhooks[7] = sms(opted_before, "calf cramp", f"SM{run}opted{0:022d}")
    webhooks[9] = call_turn(caller, RED_FLAG, f"CA{run}{0:027d}")
    webhooks[11] = sms(sender[11], "more", f"SM{run}{11:027d}")  # its context is in the database
    webhooks[YES_INDEX] = sms(sender[YES_INDEX], "YES", f"SM{run}{YES_INDEX:027d}")  # a check?
    webhooks[-5] = sms(stop_sender, "calf cramp", f"SM{run}after{0:022d}")
    return Plan(run, webhooks, {3, 7, count - 5}, red_sender, caller, stop_sender, opted_before)


def check_answers(sent: list[Sent], outage: Plan, budget: float = BUDGET) -> None:
    """Every webhook: 200, TwiML, in time; a reply unless the sender is opted out."""
    assert len(sent) == len(outage.webhooks)
    problems = [(i, s.status, round(s.seconds, 2), s.body[:80]) for i, s in enumerate(sent)
                if s.status != 200 or s.twiml is None or s.seconds > budget]
    assert not problems, problems
    for index, answer in enumerate(sent):
        if answer.webhook.path.startswith("/voice"):
            assert answer.spoken, index
        elif index in outage.silent:
            assert answer.messages == [], (index, answer.messages)
        else:
            assert len(answer.messages) == 1 and answer.messages[0], index
    assert sent[2].messages == sent[5].messages  # the copy got the same urgent reply


def readyz(base: str) -> tuple[int, dict[str, object]]:
    """GET /readyz: status and body."""
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def wait_until_ready(base: str, seconds: float = 20.0) -> float:
    """Poll /readyz until "ready" (spool empty); return how long that took."""
    started = time.monotonic()
    body: dict[str, object] = {}
    while time.monotonic() < started + seconds:
        try:
            status, body = readyz(base)
            if status == 200 and body["status"] == "ready":
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not ready after recovery: {body}")


def inbound_per_sid(database_url: str, sids: set[str]) -> dict[str, int]:
    """How many inbound rows the database holds for each MessageSid or CallSid."""
    engine = open_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(Message.twilio_sid, func.count()).where(
                    Message.direction == "in", Message.twilio_sid.in_(sids))
                .group_by(Message.twilio_sid)).all()
    finally:
        engine.dispose()
    return {sid: 0 for sid in sids} | {str(sid): int(count) for sid, count in rows}


def alerts_for(hook: WebhookRecorder, number: str) -> int:
    """How many clinic alerts the webhook received about this patient."""
    with hook.lock:
        payloads = [json.loads(r["body"]) for r in hook.received]
    return sum(1 for p in payloads if p["patient_number"] == number)


def opted_out(database_url: str, sender: str) -> bool:
    """The database's opt-out state of a sender on LINE."""
    store = ConversationStore(open_engine(database_url), SenderHasher(SECRET))
    try:
        return store.state(sender, LINE).opted_out
    finally:
        store.close()


@dataclass
class Figures:
    """What one outage measured."""

    webhooks: int
    answered: int
    p50_ms: float
    max_ms: float
    ready_after_s: float


def run_outage(server: RunningServer, database: Callable[[], str], hook: WebhookRecorder,
               breaks: Callable[[], None], heals: Callable[[], None], dependency: str,
               seconds: float = 2.5, rate: float = 20.0) -> Figures:
    """Break a dependency, send the outage's traffic, heal it, check everything.

    `database` returns a URL for the test's own reads (each call may be a fresh copy).
    """
    outage = plan(seconds, rate)
    traffic = SignedTraffic(server.base, TOKEN)
    run = outage.run
    # Opted out while all was well: the local copy keeps them quiet during the outage.
    assert traffic.send(sms(outage.opted_before, "STOP", f"SM{run}before{0:021d}")).messages == []
    log_start = len(server.log_text())
    breaks()
    try:
        sent = traffic.at_rate(outage.webhooks, rate)
    finally:
        heals()
    check_answers(sent, outage)
    if dependency == "database":  # it cannot tell whether it asked: YES gets what YES means
        assert "urgent care" in sent[YES_INDEX].messages[0], sent[YES_INDEX].messages
    ready_after = wait_until_ready(server.base)

    sids = {w.form.get("MessageSid") or w.form["CallSid"] for w in outage.webhooks}
    counts = inbound_per_sid(database(), sids)
    assert set(counts.values()) == {1}, {s: c for s, c in counts.items() if c != 1}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not (
            alerts_for(hook, outage.red_sender) and alerts_for(hook, outage.caller)):
        time.sleep(0.1)
    time.sleep(1.0)  # room for a wrong second alert
    assert alerts_for(hook, outage.red_sender) == 1
    assert alerts_for(hook, outage.caller) == 1
    assert opted_out(database(), outage.stop_sender)
    assert opted_out(database(), outage.opted_before)
    later = traffic.send(sms(outage.stop_sender, "calf cramp", f"SM{run}later{0:022d}"))
    assert later.status == 200 and later.messages == []

    # One warning per worker that noticed, one when it was back, no traceback. A worker
    # tries Redis again a couple of seconds after it failed: keep texting till then.
    deadline = time.monotonic() + 15
    while True:
        log = server.log_text()[log_start:]
        down = len(re.findall(rf'"event": "{dependency} unavailable', log))
        back = len(re.findall(rf'"event": "{dependency} back"', log))
        if back >= down or time.monotonic() > deadline:
            break
        traffic.send(sms(outage.red_sender, "thanks", f"SM{run}x{secrets.token_hex(12)}"))
        time.sleep(0.3)
    assert 1 <= down <= 2 and back == down, (down, back, log[-3000:])
    assert "Traceback" not in log, log[-3000:]
    latencies = sorted(s.seconds * 1000 for s in sent)
    return Figures(len(sent), sum(s.status == 200 for s in sent),
                   round(statistics.median(latencies), 1), round(latencies[-1], 1),
                   round(ready_after, 2))
