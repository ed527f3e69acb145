"""The dashboard's figures: counted per clinic and UTC day, checks followed to their answer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import Table, select

from responder.dialogue.conversation import ConversationState, Turn
from responder.dialogue.replies import Reply
from responder.dialogue.respond import Responder
from responder.nlu.matcher import Match, Thresholds
from responder.store.clinic_figures import Window, clinic_figures
from responder.store.conversation_store import ConversationStore, Inbound
from responder.store.inbox_figures import urgent_ack_times
from responder.store.inbox_items import InboxItem
from responder.store.models import Message
from tests.conftest import INTENTS

SECRET = "a-long-random-test-secret"
RIVERSIDE, HILLTOP = "+15550100001", "+15550200001"
LAST = date(2026, 11, 30)
WINDOW = Window.ending(LAST, 7)

# One message a line: day offset from LAST, our number, sender, channel, intent, care,
# reason (check_yes/check_no for an answer to the check question), reply template.
SEED = [
    (0, RIVERSIDE, "+15551110001", "sms", "cramp_now", "self_care", "model", "cramp_now.sms"),
    (0, RIVERSIDE, "+15551110002", "sms", "cramp_now", "self_care", "model", "cramp_now.sms"),
    (0, RIVERSIDE, "+15551110003", "voice", "out_of_scope", "none", "model",
     "out_of_scope.voice"),
    (-1, RIVERSIDE, "+15551110004", "sms", "tight_after_run", "check", "model",
     "system.check.sms"),
    (-1, RIVERSIDE, "+15551110004", "sms", "red_flag", "urgent", "check_yes",
     "red_flag.urgent.sms"),
    (-1, RIVERSIDE, "+15551110005", "sms", "tight_after_run", "check", "model",
     "system.check.sms"),
    (-1, RIVERSIDE, "+15551110005", "sms", "tight_after_run", "self_care", "check_no",
     "tight_after_run.sms"),
    (-2, RIVERSIDE, "+15551110006", "voice", "cramp_now", "check", "model",
     "system.check.voice"),
    (-2, RIVERSIDE, "+15551110006", "voice", "shoes", "self_care", "model", "shoes.voice"),
    (-3, RIVERSIDE, "+15551110007", "api", "chronic_pain", "check", "model", "system.check.api"),
    (-3, RIVERSIDE, "+15551110008", "api", "out_of_scope", "none", "model", "out_of_scope.api"),
    (-40, RIVERSIDE, "+15551110009", "sms", "cramp_now", "self_care", "model", "cramp_now.sms"),
    (0, HILLTOP, "+15551110001", "sms", "red_flag", "emergency", "model",
     "red_flag.emergency.sms"),
]
# What each check question above was followed by (the tests' reading of SEED).
CHECK_OUTCOMES = {"yes": 1, "no": 1, "other": 1, "no_reply": 1}


@pytest.fixture
def store(database_url: str) -> Iterator[ConversationStore]:
    opened = ConversationStore.open(database_url, SECRET)
    yield opened
    opened.close()


def _seed(store: ConversationStore) -> None:
    for i, (offset, number, sender, channel, intent, care, reason, template) in enumerate(SEED):
        at = datetime.combine(LAST + timedelta(days=offset), datetime.min.time(), UTC)
        match = Match("text", "text", intent, 0.9, reason=reason, care=care)
        turn = Turn(match, Reply("reply", template), ConversationState())
        store.record(Inbound(channel, sender, number, "text"), turn,
                     now=at + timedelta(hours=9, minutes=i))
    # A call-control turn (silence): no intent, not a message on the dashboard.
    silence = Turn(Match("", "", "", 0.0, reason="call_control"), Reply("Sorry?", "system.x"),
                   ConversationState())
    store.record(Inbound("voice", "+15551110003", RIVERSIDE, ""), silence,
                 now=datetime.combine(LAST, datetime.min.time(), UTC) + timedelta(hours=10))


def _expected(number: str, position: int) -> Counter[tuple[date, str]]:
    return Counter((LAST + timedelta(days=row[0]), row[position]) for row in SEED
                   if row[1] == number and WINDOW.first <= LAST + timedelta(days=row[0]))


def _flat(counts: dict[str, dict[date, int]]) -> Counter[tuple[date, str]]:
    return Counter({(day, key): n for key, days in counts.items() for day, n in days.items()})


def test_figures_count_only_the_clinics_messages_in_the_window(store: ConversationStore) -> None:
    _seed(store)
    figures = clinic_figures(store.engine, [RIVERSIDE], WINDOW)
    assert _flat(figures.by_channel) == _expected(RIVERSIDE, 3)
    assert _flat(figures.by_intent) == _expected(RIVERSIDE, 4)
    assert _flat(figures.by_care) == _expected(RIVERSIDE, 5)
    assert figures.messages == 11
    assert figures.out_of_scope_rate == pytest.approx(2 / 11)
    assert {k: figures.total(figures.checks, k) for k in figures.checks} == CHECK_OUTCOMES
    hilltop = clinic_figures(store.engine, [HILLTOP], WINDOW)
    assert _flat(hilltop.by_care) == _expected(HILLTOP, 5)
    assert hilltop.total(hilltop.checks) == 0
    assert clinic_figures(store.engine, [], WINDOW).messages == 0


def test_a_day_is_a_utc_calendar_day(store: ConversationStore) -> None:
    late = datetime(2026, 11, 29, 23, 59, 59, tzinfo=UTC)
    turn = Turn(Match("t", "t", "shoes", 0.9, care="self_care"), Reply("r", "shoes.sms"),
                ConversationState())
    store.record(Inbound("sms", "+15551110001", RIVERSIDE, "t"), turn, now=late)
    store.record(Inbound("sms", "+15551110002", RIVERSIDE, "t"), turn,
                 now=late + timedelta(seconds=2))
    figures = clinic_figures(store.engine, [RIVERSIDE], WINDOW)
    assert figures.by_channel == {"sms": {date(2026, 11, 29): 1, date(2026, 11, 30): 1}}
    assert clinic_figures(store.engine, [RIVERSIDE], Window.ending(LAST, 1)).messages == 1


def test_the_webhook_records_care_and_the_check_answer(make_app: Callable[..., Flask]) -> None:
    """Every message in the check band (by configuration): a check, then YES."""
    cautious = Responder.from_directory(INTENTS, Thresholds(urgent=1.0, check=0.0))
    app = make_app(RESPONDER=cautious)
    client = app.test_client()
    for body in ("calves tight after my long run", "yes"):
        client.post("/sms", data={"From": "+15551110001", "To": RIVERSIDE, "Body": body})
    store: ConversationStore = app.extensions["calfline_store"]
    with store.engine.connect() as connection:
        rows = connection.execute(select(Message.direction, Message.care, Message.check_answer,
                                         Message.template_id).order_by(Message.id)).all()
    assert [(r.care, r.check_answer) for r in rows if r.direction == "in"] == [
        ("check", None), ("urgent", "yes")]
    assert rows[1].template_id.startswith("system.check.")
    today = Window.ending(datetime.now(UTC).date(), 1)
    assert clinic_figures(store.engine, [RIVERSIDE], today).checks.keys() == {"yes"}


def test_urgent_acknowledgement_times(store: ConversationStore) -> None:
    since, until = WINDOW.since, WINDOW.until
    inbox: Table = InboxItem.__table__  # type: ignore[assignment]
    created = since + timedelta(days=1)
    rows = [{"clinic_id": "riverside", "urgent": True, "created_at": created,
             "acknowledged_at": created + timedelta(minutes=m)} for m in range(1, 11)]
    rows += [{"clinic_id": "riverside", "urgent": True, "created_at": created,
              "acknowledged_at": None},
             {"clinic_id": "riverside", "urgent": False, "created_at": created,
              "acknowledged_at": created + timedelta(hours=5)},
             {"clinic_id": "hilltop", "urgent": True, "created_at": created,
              "acknowledged_at": created + timedelta(hours=9)},
             {"clinic_id": "riverside", "urgent": True, "created_at": since - timedelta(days=1),
              "acknowledged_at": since + timedelta(hours=9)}]
    # The inbox's other required columns (responder/store/inbox_items.py).
    rows = [{**row, "kind": "red_flag" if row["urgent"] else "callback", "event_key": f"e{n}",
             "channel": "sms", "our_number": "+15550100001"} for n, row in enumerate(rows)]
    with store.engine.begin() as connection:
        connection.execute(inbox.insert(), rows)
    times = urgent_ack_times(store.engine, "riverside", since, until)
    assert times is not None
    # Waits of 1..10 minutes: median 5.5 min; nearest-rank p90 is the 9th, 9 min.
    assert (times.acknowledged, times.unacknowledged) == (10, 1)
    assert (times.median_seconds, times.p90_seconds) == (330.0, 540.0)
    empty = urgent_ack_times(store.engine, "nowhere", since, until)
    assert empty is not None and empty.median_seconds is None and empty.acknowledged == 0
