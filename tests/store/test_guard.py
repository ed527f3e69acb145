"""The store guard: no webhook waits past its limit, abandoned work never commits, one log line
per outage and one when it ends."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial

import pytest
from sqlalchemy import event, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from responder.errors import StoreUnavailable
from responder.store import guard
from responder.store.conversation_store import ConversationStore
from responder.store.models import Meta
from tests.databases import postgres_schema
from tests.faultproxy import FaultProxy
from tests.log_capture import Lines, captured

SECRET = "guard-test-secret"


@pytest.fixture
def store_log() -> Iterator[Lines]:
    with captured("calfline.store") as lines:
        yield lines


@pytest.fixture
def store(inline_store: ConversationStore) -> ConversationStore:
    return inline_store


def _probe_rows(store: ConversationStore) -> int:
    with store.engine.connect() as connection:
        return len(connection.execute(select(Meta).where(Meta.key == "late")).all())


def _slow_write(store: ConversationStore) -> None:
    time.sleep(0.5)  # a stalled disk, a lock held elsewhere
    with store.engine.begin() as connection:
        connection.execute(Meta.__table__.insert().values(key="late", value="x"))


def test_work_on_the_pool_past_the_limit_is_abandoned_and_never_committed(
    store: ConversationStore
) -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="no answer within 0.3 s"):
        store.guard.attempt(partial(_slow_write, store))  # the probes' path: the pool
    assert time.monotonic() - started < 0.45
    time.sleep(0.5)  # the abandoned work woke up meanwhile and tried to write
    assert _probe_rows(store) == 0


def test_sqlite_webhook_work_runs_in_the_callers_own_thread(store: ConversationStore) -> None:
    assert store.guard.run(threading.current_thread) is threading.current_thread()


def test_inline_work_past_the_limit_is_refused_its_transaction(store: ConversationStore) -> None:
    # Python's own sleep cannot be cut in the same thread; what it then asks of the
    # database is refused, so nothing lands after the webhook's limit.
    with pytest.raises(StoreUnavailable):
        store.guard.run(partial(_slow_write, store))
    assert _probe_rows(store) == 0
    assert not store.guard.available


def test_an_inline_sqlite_statement_is_interrupted_at_the_limit(store: ConversationStore) -> None:
    def write_then_run_away() -> None:
        with store.engine.begin() as connection:
            connection.execute(Meta.__table__.insert().values(key="late", value="x"))
            connection.execute(text(  # counts for minutes unless interrupted
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                "WHERE i < 1000000000) SELECT count(*) FROM n"))

    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="interrupted"):
        store.guard.run(write_then_run_away)
    assert time.monotonic() - started < 0.45
    assert _probe_rows(store) == 0  # rolled back with the statement


def test_another_process_holding_the_writer_lock_is_not_waited_for(
    store: ConversationStore
) -> None:
    database = make_url(str(store.engine.url)).database
    with subprocess.Popen([sys.executable, "-c", (
            "import fcntl, time\n"
            f"f = open({database + '-writer.lock'!r}, 'a')\n"
            "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(5)")],
            stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="past the time limit"):
                store.guard.run(store.write_probe)
            assert time.monotonic() - started < 0.45
        finally:
            holder.kill()
    store.guard.attempt(store.write_probe)  # and the next write goes through


def _full_disk() -> None:
    raise sa_exc.OperationalError("INSERT", {}, Exception("database or disk is full"))


def test_one_warning_per_outage_and_one_when_it_ends(
    store: ConversationStore, store_log: Lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(guard, "SETTLE_SECONDS", 0.2)
    calls: list[int] = []

    def failing() -> None:
        calls.append(1)
        _full_disk()

    for _ in range(20):
        with pytest.raises(StoreUnavailable):
            store.guard.run(failing)
    assert len(calls) == 1  # the open circuit refuses without touching the database
    assert not store.guard.available and "disk is full" in store.guard.reason
    store.guard.attempt(store.write_probe)
    assert store.guard.available
    # A full disk lets a write through now and then: the same outage, no second warning.
    with pytest.raises(StoreUnavailable):
        store.guard.run(_full_disk)
    store.guard.attempt(store.write_probe)
    store.guard.settle()
    assert len(store_log.records) == 1  # not over yet: it has not stayed back long enough
    time.sleep(0.25)
    store.guard.settle()
    messages = [(r.levelname, r.getMessage()) for r in store_log.records]
    assert messages == [("WARNING", "database unavailable: answering without it until it is back"),
                        ("WARNING", "database back")]
    back = store_log.records[1]
    assert back.calls_refused == 19 and back.relapses == 1  # type: ignore[attr-defined]
    assert not any(r.exc_info for r in store_log.records)  # no traceback


def test_a_bug_is_not_an_outage(store: ConversationStore) -> None:
    def buggy() -> None:
        raise KeyError("a programming error")

    with pytest.raises(KeyError):
        store.guard.run(buggy)
    assert store.guard.available


def test_a_writer_holding_sqlite_past_the_limit_is_not_waited_for(
    store: ConversationStore
) -> None:
    held, release = threading.Event(), threading.Event()

    def hold_the_writer_lock() -> None:
        with store._writers:  # another webhook's transaction, stuck on the disk
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold_the_writer_lock)
    holder.start()
    held.wait(5)
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable):
            store.guard.run(store.write_probe)
        assert time.monotonic() - started < 0.45
    finally:
        release.set()
        holder.join()
    store.guard.attempt(store.write_probe)  # and the next write goes through


@pytest.mark.parametrize("inline", [False, True], ids=["on the pool", "inline, watchdog"])
def test_a_frozen_postgresql_is_cut_loose(store_log: Lines, inline: bool) -> None:
    with postgres_schema() as url, FaultProxy(5432) as proxy:
        via_proxy = make_url(url).set(port=proxy.port).render_as_string(hide_password=False)
        store = ConversationStore.open(via_proxy, SECRET, timeout=0.3)
        store.guard.inline = inline  # as the web app sets it for PostgreSQL
        finished = threading.Event()

        def query() -> int:
            try:
                with store.engine.connect() as connection:
                    return int(connection.execute(text("SELECT 1")).scalar_one())
            finally:
                finished.set()

        try:
            assert store.guard.run(query) == 1
            finished.clear()
            proxy.freeze()  # the server's kernel takes the bytes; no answer ever comes
            # Should the guard fail to cut it, the proxy resets the connection after 5 s:
            # a failed assertion below rather than a test run that hangs.
            backstop = threading.Timer(5.0, proxy.drop)
            backstop.start()
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                store.guard.run(query)
            assert time.monotonic() - started < 0.45
            backstop.cancel()
            # psycopg has no read timeout: the guard shut the socket so the thread is free
            # (inline, the thread is this one: the watchdog cut it at the deadline).
            assert finished.wait(1.0)
            proxy.heal()
            assert store.guard.attempt(query) == 1  # a fresh connection
        finally:
            store.close()
    assert [r.getMessage() for r in store_log.records] == [
        "database unavailable: answering without it until it is back"]


def test_webhooks_set_sqlites_busy_wait_once_and_within_their_limit(
    store: ConversationStore
) -> None:
    statements: list[str] = []
    event.listen(store.engine, "checkout",
                 lambda dbapi, _record, _proxy: dbapi.set_trace_callback(statements.append))
    for i in range(5):  # each webhook's matching takes its own few milliseconds
        store.guard.run(lambda i=i: (time.sleep(0.003 * i), store.write_probe()))
    limits = [int(s.split("=")[1]) for s in statements if s.startswith("PRAGMA busy_timeout")]
    # The time left (0.3 s less a little) rounded down to 50 ms: the same every time.
    assert limits == [250]
    assert len([s for s in statements if s == "BEGIN IMMEDIATE"]) == 5
