"""A SQLite file's webhook work reuses the last webhook's connection, and lets go of
it when the work fails or is interrupted, when threads overlap, and at close."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from responder.dialogue.conversation import ConversationState, Turn
from responder.dialogue.replies import Reply
from responder.errors import StoreUnavailable
from responder.nlu.matcher import Match
from responder.store.conversation_store import ConversationStore
from responder.store.spare_connection import SpareConnection
from responder.store.turns import Inbound
from tests.databases import sqlite_url

SECRET = "spare-connection-test-secret"
PHONE, OURS = "+15550003333", "+15550001000"
COUNT_FOR_MINUTES = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                     "WHERE i < 1000000000) SELECT count(*) FROM n")


@pytest.fixture
def store(inline_store: ConversationStore) -> ConversationStore:
    return inline_store


def _checkouts(engine: Engine) -> list[Any]:
    """The DBAPI connections taken from the engine's pool from now on, in order."""
    taken: list[Any] = []
    event.listen(engine, "checkout", lambda dbapi, _record, _proxy: taken.append(dbapi))
    return taken


def _checked_out(engine: Engine) -> int:
    return int(engine.pool.checkedout())  # type: ignore[attr-defined]


def test_webhook_after_webhook_reuses_one_connection(store: ConversationStore) -> None:
    taken = _checkouts(store.engine)
    for _ in range(3):
        store.guard.run(lambda: store.state(PHONE, OURS))
    other = threading.Thread(target=lambda: store.state(PHONE, OURS))
    other.start()
    other.join()
    assert len(taken) == 1  # the other thread came later: it took the same spare
    assert _checked_out(store.engine) == 1
    store.close()
    assert _checked_out(store.engine) == 0


def test_overlapping_threads_keep_one_spare_at_most(store: ConversationStore) -> None:
    turn = Turn(Match("calf cramp", "calf cramp", "cramp_now", 0.9),
                Reply("Stretch it", "cramp_now.sms"), ConversationState(last_intent="cramp_now"))
    start = threading.Barrier(20)

    def send(sid: str) -> None:
        start.wait()
        store.record(Inbound("sms", PHONE, OURS, "calf cramp", sid, f"sms:{sid}"), turn)

    threads = [threading.Thread(target=send, args=(f"SM{i % 5}",)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _checked_out(store.engine) <= 1  # nothing left behind by the threads
    with store.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT count(*), count(DISTINCT dedupe_key) FROM messages "
            "WHERE direction = 'in'")).one()
    assert tuple(rows) == (5, 5)  # still one record per message


def test_a_transaction_left_open_does_not_pin_a_snapshot(tmp_path: Path) -> None:
    store = ConversationStore.open(sqlite_url(tmp_path), SECRET)
    spare = SpareConnection(store.engine)
    with spare.connection() as connection:
        connection.execute(text("SELECT count(*) FROM calfline_meta"))  # autobegins
    store.write_probe()  # another connection writes to the WAL
    with store.engine.connect() as other:  # outside a transaction, on the driver
        raw = other.connection.driver_connection
        assert raw is not None
        busy, _, _ = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0  # a reader left on the old snapshot would block the truncation
    spare.close()
    store.close()


def test_a_connection_that_raised_is_given_back_and_replaced(tmp_path: Path) -> None:
    store = ConversationStore.open(sqlite_url(tmp_path), SECRET)
    spare = SpareConnection(store.engine)
    with pytest.raises(RuntimeError), spare.connection() as first:
        raise RuntimeError("a bug in the work")
    assert first.closed and _checked_out(store.engine) == 0
    with spare.connection() as second:
        assert second is not first and second.execute(text("SELECT 1")).scalar() == 1
    spare.close()
    store.close()


def test_work_the_guard_abandons_is_interrupted_on_the_spare(tmp_path: Path) -> None:
    store = ConversationStore.open(sqlite_url(tmp_path), SECRET, timeout=0.3)
    spare = SpareConnection(store.engine)
    try:
        # A first, quick piece of work leaves the spare, so the second piece does not
        # check its connection out: only `watched` tells the guard about it.
        store.guard.attempt(lambda: _run(spare, "SELECT 1"))
        ended = threading.Event()

        def run_away() -> None:
            try:
                _run(spare, COUNT_FOR_MINUTES)
            finally:
                ended.set()

        with pytest.raises(StoreUnavailable):
            store.guard.attempt(run_away)
        assert ended.wait(2.0), "the abandoned statement was not interrupted"
        assert _run(spare, "SELECT 1") == 1  # and the next work gets a sound connection
    finally:
        spare.close()
        store.close()


def _run(spare: SpareConnection, sql: str) -> Any:
    with spare.connection() as connection:
        return connection.execute(text(sql)).scalar()
