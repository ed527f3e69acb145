"""ConversationStore.replay(): a turn answered during an outage is recorded once, as sent,
without undoing what the database learnt since."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from responder.dialogue.conversation import ConversationState, Turn
from responder.dialogue.replies import Reply
from responder.nlu.matcher import Match
from responder.store.conversation_store import ConversationStore
from responder.store.models import Conversation, Message
from responder.store.turns import Inbound, SpooledTurn

SENDER, LINE = "+15557770000", "+15550001000"
T0 = datetime(2026, 5, 1, 7, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[ConversationStore]:
    opened = ConversationStore.open(database_url, "replay-test-secret")
    yield opened
    opened.close()


def _spooled(n: int, at: datetime, body: str = "calf cramp", intent: str = "cramp_now",
             opt_change: bool | None = None, reply: str = "Straighten your leg.") -> SpooledTurn:
    inbound = Inbound("sms", SENDER, LINE, body, f"SM{n:032d}", f"dedupe-{n}")
    return SpooledTurn(inbound, at, intent, 0.9, reply, f"{intent}.sms", opt_change)


def _live(store: ConversationStore, n: int, at: datetime, body: str, intent: str,
          opt_change: bool | None = None) -> None:
    inbound = Inbound("sms", SENDER, LINE, body, f"SM{n:032d}", f"dedupe-{n}")
    state = ConversationState(opted_out=bool(opt_change), last_intent=intent, context_at=at)
    turn = Turn(Match(body, body, intent, 1.0), Reply("live reply", f"{intent}.sms"), state,
                opt_change)
    store.record(inbound, turn, at)


def _inbound_count(store: ConversationStore) -> int:
    with store.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(Message)
                                     .where(Message.direction == "in")) or 0)


def test_a_spooled_turn_is_recorded_once_with_the_reply_that_went_out(
    store: ConversationStore
) -> None:
    turn = _spooled(1, T0, reply="What was sent during the outage.")
    first, again = store.replay(turn), store.replay(turn)
    assert not first.duplicate and again.duplicate
    assert again.text == "What was sent during the outage."
    assert _inbound_count(store) == 1
    (conversation,) = store.recent_conversations([LINE])
    messages = store.messages(conversation.id)
    assert [(m.direction, m.body, m.created_at) for m in messages] == [
        ("in", "calf cramp", T0), ("out", "What was sent during the outage.", T0)]


def test_a_turn_the_webhook_recorded_after_all_is_not_recorded_again(
    store: ConversationStore
) -> None:
    _live(store, 2, T0, "calf cramp", "cramp_now")  # committed just as the webhook gave up
    assert store.replay(_spooled(2, T0)).duplicate
    assert _inbound_count(store) == 1


def test_a_replayed_stop_does_not_undo_a_later_start(store: ConversationStore) -> None:
    stop = _spooled(3, T0, "STOP", "opt_out", opt_change=True, reply="")
    _live(store, 4, T0 + timedelta(minutes=5), "START", "opt_in", opt_change=False)
    store.replay(stop)  # the database came back after the START
    assert not store.state(SENDER, LINE).opted_out
    assert _inbound_count(store) == 2


def test_a_replayed_stop_with_nothing_after_it_opts_out(store: ConversationStore) -> None:
    _live(store, 5, T0, "calf cramp", "cramp_now")
    store.replay(_spooled(6, T0 + timedelta(minutes=1), "STOP", "opt_out", opt_change=True))
    assert store.state(SENDER, LINE).opted_out
    assert SENDER not in str(store.opted_out_pairs())  # hashes only
    assert len(store.opted_out_pairs()) == 1


def test_replay_keeps_the_newer_context_and_time(store: ConversationStore) -> None:
    later = T0 + timedelta(minutes=10)
    _live(store, 7, later, "what shoes", "shoe_question")
    store.replay(_spooled(8, T0))  # older than what the database has
    state = store.state(SENDER, LINE)
    assert state.last_intent == "shoe_question" and state.context_at == later
    with store.engine.connect() as connection:
        updated = connection.scalar(select(Conversation.updated_at))
    assert updated == later


def test_a_turn_spooled_for_another_database_is_refused(store: ConversationStore) -> None:
    assert store.database_id  # read (or written) when the store opened
    stranger = SpooledTurn(**{**_spooled(9, T0).__dict__, "database": "another-database"})
    with pytest.raises(ValueError, match="another database"):
        store.replay(stranger)
    assert _inbound_count(store) == 0
