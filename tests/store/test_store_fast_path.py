"""The webhook's store path: one read, one write transaction, and what each must still keep."""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import (
    MetaData,
    Table,
    bindparam,
    create_engine,
    event,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool

from responder.dialogue.conversation import SILENT_TEMPLATE, ConversationState, Turn
from responder.dialogue.replies import Reply
from responder.nlu.matcher import Match
from responder.store.conversation_store import (
    ConversationStore,
    Inbound,
    SenderHasher,
    idempotency_key,
    short_text,
)
from responder.store.database import PING_AFTER_IDLE_SECONDS, WriterQueue, reading
from responder.store.driver_statement import DriverStatement
from responder.store.statements import STATE_COLUMNS
from tests.conftest import ROOT
from tests.databases import postgres_schema, sqlite_url

PHONE, LINE = "+15557654321", "+15550001000"
SECRET = "a-long-random-test-secret"


def _turn(intent: str = "cramp_now") -> Turn:
    match = Match("calf cramp", "calf cramp", intent, 0.9)
    return Turn(match, Reply("Stretch it", f"{intent}.sms"), ConversationState(last_intent=intent))


def _stop() -> Turn:
    return Turn(Match("STOP", "stop", "opt_out", 1.0), Reply("", "opt_out.sms"),
                ConversationState(opted_out=True), opt_change=True)


def test_a_stop_between_read_and_write_silences_the_reply() -> None:
    # PostgreSQL reads the state and records in two statements: a STOP can land between.
    with postgres_schema() as url:
        store = ConversationStore.open(url, SECRET)
        seen: list[ConversationState] = []

        def decide(state: ConversationState) -> Turn:
            seen.append(state)
            # Another worker records a STOP from the same sender while this one decides.
            store.record(Inbound("sms", PHONE, LINE, "STOP"), _stop())
            return _turn()

        reply = store.exchange(Inbound("sms", PHONE, LINE, "calf cramp"), decide)
        assert seen == [ConversationState()]  # read before the STOP ...
        assert (reply.text, reply.template_id) == ("", SILENT_TEMPLATE)  # ... answered after
        state = store.state(PHONE, LINE)
        assert state.opted_out and state.last_intent is None
        store.close()


def test_on_sqlite_a_stop_waits_for_the_exchange_that_read_the_state(tmp_path: Any) -> None:
    # SQLite reads the state inside the record's write transaction: another worker's
    # STOP, sent while this one decides, is recorded after this exchange, not inside it.
    url = sqlite_url(tmp_path)
    store, other = ConversationStore.open(url, SECRET), ConversationStore.open(url, SECRET)
    seen: list[ConversationState] = []
    stop = threading.Thread(
        target=lambda: other.record(Inbound("sms", PHONE, LINE, "STOP"), _stop()))

    def decide(state: ConversationState) -> Turn:
        seen.append(state)
        stop.start()
        stop.join(timeout=0.5)
        assert stop.is_alive()  # waiting for this exchange's write lock
        return _turn()

    try:
        reply = store.exchange(Inbound("sms", PHONE, LINE, "calf cramp"), decide)
        stop.join(timeout=30)
        assert not stop.is_alive()
    finally:
        store.close()
    assert seen == [ConversationState()]
    assert (reply.text, reply.template_id) == ("Stretch it", "cramp_now.sms")  # answered
    state = other.state(PHONE, LINE)
    assert state.opted_out and state.last_intent is None  # and the STOP came after it
    (conversation,) = other.recent_conversations([LINE])
    bodies = [m.body for m in other.messages(conversation.id)]
    assert bodies.index("calf cramp") < bodies.index("STOP")
    other.close()


def test_a_resent_webhook_is_not_answered_twice(database_url: str) -> None:
    store = ConversationStore.open(database_url, SECRET)
    inbound = Inbound("sms", PHONE, LINE, "calf cramp", "SM1", idempotency_key("sms", "SM1"))
    first = store.exchange(inbound, lambda state: _turn("cramp_now"))
    again = store.exchange(inbound, lambda state: _turn("shoes"))
    assert not first.duplicate and again.duplicate
    assert (again.text, again.template_id, again.intent) == (
        first.text, first.template_id, "cramp_now")
    assert store.state(PHONE, LINE).last_intent == "cramp_now"  # the retry changed nothing
    assert store.find_reply(inbound.dedupe_key or "") == again
    (conversation,) = store.recent_conversations([LINE])
    assert len(store.messages(conversation.id)) == 2
    store.close()


def test_reading_state_does_not_wait_for_a_writer(tmp_path: Any) -> None:
    url = sqlite_url(tmp_path)
    store = ConversationStore.open(url, SECRET)
    store.record(Inbound("sms", PHONE, LINE, "calf cramp"), _turn())
    writer = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    states: list[ConversationState] = []
    reader = threading.Thread(target=lambda: states.append(store.state(PHONE, LINE)))
    try:
        reader.start()
        reader.join(timeout=5)  # a reader that wanted the lock would wait 30 s
        assert states and states[0].last_intent == "cramp_now"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        reader.join()
        store.close()


def _levels_at_commit(store: ConversationStore, query: str) -> list[Any]:
    """What `query` (SQLite's synchronous, PostgreSQL's synchronous_commit) says just
    before each commit on the store's engine, in order."""
    levels: list[Any] = []

    @event.listens_for(store.engine, "commit")
    def _level(connection: Any) -> None:
        raw = connection.connection.driver_connection
        levels.append(raw.execute(query).fetchone()[0])

    return levels


def _sqlite_levels_at_commit(store: ConversationStore,
                             pragmas: list[str] | None = None) -> list[int]:
    """SQLite's synchronous level (1 NORMAL, 2 FULL) at each COMMIT the store's new
    connections run, through SQLAlchemy or on the driver, from what SQLite executes;
    the PRAGMAs that set it go to `pragmas`."""
    levels: list[int] = []

    @event.listens_for(store.engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        level = [2]  # the engine's own connect listener, before this one, set FULL

        def _statement(sql: str) -> None:
            if sql.startswith("PRAGMA synchronous="):
                level[0] = {"NORMAL": 1, "FULL": 2}[sql.split("=", 1)[1]]
                if pragmas is not None:
                    pragmas.append(sql)
            elif sql == "COMMIT":
                levels.append(level[0])

        dbapi_connection.set_trace_callback(_statement)

    return levels


def test_sqlite_syncs_an_opt_out_after_its_commit_with_no_lock_held(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A FULL commit would sync inside SQLite's write lock and the writers' queue, where
    # every other worker's write waits for the disk; the opt-out is synced after.
    store = ConversationStore.open(sqlite_url(tmp_path), SECRET)
    levels = _sqlite_levels_at_commit(store)
    database = tmp_path / "calfline.sqlite3"
    synced: list[tuple[str, bool, bool]] = []
    fdatasync = os.fdatasync

    def _watched(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        synced.append((path, _queue_is_free(database), _write_lock_is_free(database)))
        fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", _watched)
    store.record(Inbound("sms", PHONE, LINE, "calf cramp"), _turn())
    assert synced == []  # an ordinary message: no sync
    store.record(Inbound("sms", PHONE, LINE, "STOP"), _stop())
    assert synced == [(f"{database}-wal", True, True)]  # the WAL, once, nothing held
    store.record(Inbound("sms", PHONE, LINE, "calf cramp"), _turn())
    assert levels == [1, 1, 1] and len(synced) == 1  # every webhook commit is NORMAL
    with store.engine.connect() as connection:  # the outbox, console, purge: always FULL
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    store.close()


def _queue_is_free(database: Any) -> bool:
    """Whether another writer could take the store's writer queue (its flock) now."""
    with open(f"{database}-writer.lock", "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def _write_lock_is_free(database: Any) -> bool:
    """Whether another connection could begin writing to the file without waiting."""
    other = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


def test_a_connection_left_at_normal_commits_anything_else_with_fsync(tmp_path: Any) -> None:
    # The webhook's connection stays at NORMAL between ordinary messages (no PRAGMA
    # per message), and any other write on it is back at FULL before it begins.
    store = ConversationStore.open(sqlite_url(tmp_path), SECRET)
    pragmas: list[str] = []
    levels = _sqlite_levels_at_commit(store, pragmas)
    for body in ("calf cramp", "tight calves", "sore calf"):
        store.record(Inbound("sms", PHONE, LINE, body), _turn())
    assert pragmas == ["PRAGMA synchronous=NORMAL"]  # once, not twice per message
    with store._webhook_connection() as connection, connection.begin():
        connection.execute(text("UPDATE conversations SET language = 'en'"))
    assert levels == [1, 1, 1, 2]
    store.record(Inbound("sms", PHONE, LINE, "calf cramp"), _turn())
    assert levels[-1] == 1
    store.close()


def test_writers_queue_across_processes(tmp_path: Any) -> None:
    lock = str(tmp_path / "db.sqlite3-writer.lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from responder.store.database import WriterQueue\n"
         f"with WriterQueue({lock!r}):\n"
         "    print('held', flush=True)\n"
         "    time.sleep(0.5)\n"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with WriterQueue(lock):
            waited = time.monotonic() - started
        assert 0.3 < waited < 5  # queued behind the other process, woken when it let go
    finally:
        holder.wait(timeout=10)
        holder.stdout.close()


def test_a_writer_that_dies_releases_the_queue(tmp_path: Any) -> None:
    lock = str(tmp_path / "db.sqlite3-writer.lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import os\n"
         "from responder.store.database import WriterQueue\n"
         f"WriterQueue({lock!r}).__enter__()\n"
         "os._exit(1)\n"], cwd=ROOT)
    holder.wait(timeout=10)
    done = threading.Event()

    def write() -> None:
        with WriterQueue(lock):
            done.set()

    threading.Thread(target=write, daemon=True).start()
    assert done.wait(timeout=5)


def _round_trips(store: ConversationStore, work: Any) -> int:
    """Run work() and count the requests psycopg sent (libpq's protocol trace: each
    Sync or simple Query waits for the server)."""
    trace = tempfile.TemporaryFile()
    # The connection the webhook's work takes next: the store keeps it (spare_connection.py).
    with store._webhook_connection() as connection:
        pgconn = connection.connection.dbapi_connection.pgconn
    pgconn.trace(trace.fileno())
    try:
        work()
    finally:
        pgconn.untrace()
    trace.seek(0)
    lines = trace.read().decode("utf-8", "replace").splitlines()
    trace.close()
    return sum(1 for line in lines if re.search(r"\tF\t\d+\t(Sync|Query)\b", line))


def test_postgresql_records_an_ordinary_message_in_one_statement() -> None:
    with postgres_schema() as url:
        store = ConversationStore.open(url, SECRET)
        store.ping()  # a pooled connection, pinged now: the counts below are the webhook's
        first = Inbound("sms", PHONE, LINE, "calf cramp", "SM1", idempotency_key("sms", "SM1"))
        trips = _round_trips(store, lambda: store.exchange(first, lambda state: _turn()))
        assert trips == 2  # the state read and the record: no BEGIN, no COMMIT
        assert store.state(PHONE, LINE).last_intent == "cramp_now"
        (conversation,) = store.recent_conversations([LINE])
        inbound, reply = store.messages(conversation.id)
        assert (inbound.direction, inbound.body, reply.direction, reply.body) == (
            "in", "calf cramp", "out", "Stretch it")
        later = Inbound("sms", PHONE, LINE, "STOP", "SM2", idempotency_key("sms", "SM2"))
        assert _round_trips(store, lambda: store.exchange(later, lambda state: _stop())) > 2
        store.close()


def test_postgresql_waits_for_the_wal_flush_only_inside_transactions() -> None:
    """The web app's store (a time limit) records an ordinary message without waiting
    for the WAL's flush; an opt-out, and every other transaction, waits for it."""
    with postgres_schema() as url:
        store = ConversationStore.open(url, SECRET, 5.0)
        store.ping()
        levels = _levels_at_commit(store, "SHOW synchronous_commit")
        first = Inbound("sms", PHONE, LINE, "calf cramp", "SM1", idempotency_key("sms", "SM1"))
        assert _round_trips(store, lambda: store.exchange(first, lambda state: _turn())) == 2
        assert levels == []  # in autocommit: the connection's own setting
        with store.engine.connect() as connection:
            with reading(connection):
                assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
            with connection.begin():
                assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
        later = Inbound("sms", PHONE, LINE, "STOP", "SM2", idempotency_key("sms", "SM2"))
        store.exchange(later, lambda state: _stop())
        assert levels[-1:] == ["on"]  # the opt-out's transaction
        assert store.state(PHONE, LINE).opted_out
        store.close()
    with postgres_schema() as url:  # the command line's store: the server's default
        store = ConversationStore.open(url, SECRET)
        with store.engine.connect() as connection, reading(connection):
            assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
        store.close()


def test_an_opted_out_sender_gets_no_text_but_a_call_is_answered(database_url: str) -> None:
    store = ConversationStore.open(database_url, SECRET)
    store.record(Inbound("sms", PHONE, LINE, "STOP"), _stop())
    text = store.record(Inbound("sms", PHONE, LINE, "calf cramp"), _turn())
    call = store.record(Inbound("voice", PHONE, LINE, "calf cramp"), _turn())
    assert (text.text, text.template_id) == ("", SILENT_TEMPLATE)
    assert (call.text, call.template_id) == ("Stretch it", "cramp_now.sms")
    state = store.state(PHONE, LINE)
    assert state.opted_out and state.last_intent is None  # opted out: context kept as it was
    store.close()


def test_sqlite_driver_statements_write_what_sqlalchemy_writes(tmp_path: Any) -> None:
    """The record's statements on the driver's cursor store the same values, in the same
    text forms (UTC datetimes, booleans), as the same statements through SQLAlchemy."""
    url = sqlite_url(tmp_path)
    store = ConversationStore.open(url, SECRET)
    assert set(store.sql.driver) == {"touch_with_state", "inbound", "reply", "state"}
    at = datetime(2026, 11, 30, 12, 0, 1, 123456, tzinfo=UTC)
    match = Match("calf cramp", "calf cramp", "cramp_now", 0.9, care="none", language="en")
    turn = Turn(match, Reply("Stretch it", "cramp_now.sms", language="en"),
                ConversationState(last_intent="cramp_now", context_at=at, language="en"))
    store.record(Inbound("sms", PHONE, LINE, "calf cramp", "SM1"), turn, at)
    through_sqlalchemy = ConversationStore.open(url, SECRET)
    through_sqlalchemy.sql.driver.clear()
    through_sqlalchemy.record(Inbound("sms", "+15557654322", LINE, "calf cramp", "SM2"), turn, at)
    raw = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        ours, theirs = raw.execute(
            "SELECT sender_last4, our_number, created_at, updated_at, opted_out, last_intent, "
            "clarify_first, context_at, language FROM conversations ORDER BY id").fetchall()
        assert ours[1:] == theirs[1:] and (ours[0], theirs[0]) == ("4321", "4322")
        assert ours[2] == "2026-11-30 12:00:01.123456" and ours[4] == 0
        rows = raw.execute("SELECT direction, channel, created_at, body, intent, confidence, "
                           "template_id, twilio_sid, care, check_answer, language, "
                           "reply_to_id IS NULL FROM messages ORDER BY id").fetchall()
        assert [r[:7] + r[8:] for r in rows[:2]] == [r[:7] + r[8:] for r in rows[2:]]
        assert [r[7] for r in rows] == ["SM1", None, "SM2", None]
    finally:
        raw.close()
    assert store.state(PHONE, LINE) == through_sqlalchemy.state("+15557654322", LINE)
    store.close()
    through_sqlalchemy.close()


def test_sqlite_driver_statement_errors_are_sqlalchemys(tmp_path: Any) -> None:
    """The guard tells an outage from a bug by SQLAlchemy's exception classes."""
    store = ConversationStore.open(sqlite_url(tmp_path), SECRET)
    row = {"conversation_id": 999, "direction": "in", "channel": "sms",
           "created_at": datetime.now(UTC), "body": "x", "intent": None, "confidence": None,
           "template_id": None, "twilio_sid": None, "dedupe_key": "k", "reply_to_id": None,
           "care": None, "check_answer": None, "language": None}
    with store.engine.connect() as connection, connection.begin():
        with pytest.raises(sa_exc.IntegrityError):  # no conversation 999: the foreign key
            store.sql.driver["inbound"].rows(connection, row)
    store.close()


def test_postgresql_driver_statements_write_what_sqlalchemy_writes() -> None:
    """The state read and the one-statement record on psycopg's cursor store and read
    the same values as the same statements through SQLAlchemy."""
    with postgres_schema() as url:
        store = ConversationStore.open(url, SECRET)
        assert set(store.sql.driver) == {"state", "record_in_one"}
        at = datetime(2026, 11, 30, 12, 0, 1, 123456, tzinfo=UTC)
        match = Match("calf cramp", "calf cramp", "cramp_now", 0.9, care="none", language="en")
        turn = Turn(match, Reply("Stretch it", "cramp_now.sms", language="en"),
                    ConversationState(last_intent="cramp_now", context_at=at, language="en"))
        ours = store.record(Inbound("sms", PHONE, LINE, "calf cramp", "SM1"), turn, at)
        through_sqlalchemy = ConversationStore.open(url, SECRET)
        through_sqlalchemy.sql.driver.clear()
        theirs = through_sqlalchemy.record(
            Inbound("sms", "+15557654322", LINE, "calf cramp", "SM2"), turn, at)
        assert (ours.text, ours.template_id) == (theirs.text, theirs.template_id)
        assert store.state(PHONE, LINE) == through_sqlalchemy.state("+15557654322", LINE)
        assert store.state(PHONE, LINE).context_at == at
        with store.engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT direction, channel, created_at, body, intent, confidence, template_id,"
                " care, check_answer, language FROM messages ORDER BY id").fetchall()
        assert rows[:2] == rows[2:] and rows[0][2] == at
        store.close()
        through_sqlalchemy.close()


def test_postgresql_driver_statement_drops_a_dead_connection() -> None:
    """A connection the server closed fails as SQLAlchemy's OperationalError (an outage
    to the guard) and never goes back to the pool."""
    with postgres_schema() as url:
        store = ConversationStore.open(url, SECRET)
        with store.engine.connect() as connection:
            pid = connection.connection.driver_connection.info.backend_pid  # type: ignore
            with store.engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(sa_exc.OperationalError):
                store.sql.driver["state"].rows(
                    connection, {"sender_hash": "x", "our_number": LINE})
            assert connection.invalidated
        assert store.state(PHONE, LINE) == ConversationState()  # a fresh connection
        store.close()


def test_driver_statements_tell_rows_from_none(database_url: str) -> None:
    """On both drivers: a statement that leaves no rows gives [], one with an empty
    result gives [], one with rows gives them (psycopg's test is its rownumber)."""
    store = ConversationStore.open(database_url, SECRET)
    store.record(Inbound("sms", PHONE, LINE, "calf cramp"), _turn())
    conversations = Table("conversations", MetaData(), autoload_with=store.engine)
    key = store.hasher.key(PHONE).hash
    touch = DriverStatement(
        update(conversations).where(conversations.c.sender_hash == bindparam("key"))
        .values(language="en"), store.engine.dialect, ["key"])
    read = DriverStatement(
        select(conversations.c.our_number).where(conversations.c.sender_hash == bindparam("key")),
        store.engine.dialect, ["key"])
    with store.engine.connect() as connection, connection.begin():
        assert touch.rows(connection, {"key": key}) == []
        assert read.rows(connection, {"key": "nobody"}) == []
        assert read.rows(connection, {"key": key}) == [(LINE,)]
    store.close()


# What a message writes to its conversation's row (statements.py): the time, the
# state (the context and, for STOP/START, the opt-out) and when it opted out.
MESSAGE_WRITES = {"updated_at", *STATE_COLUMNS, "opted_out_at"}


def test_no_index_of_conversations_holds_a_column_a_message_writes(database_url: str) -> None:
    """Else PostgreSQL cannot update the row in place (HOT): see migration 0006."""
    store = ConversationStore.open(database_url, SECRET)
    inspector = inspect(store.engine)
    indexed = {c for i in inspector.get_indexes("conversations") for c in i["column_names"]}
    indexed |= {c for u in inspector.get_unique_constraints("conversations")
                for c in u["column_names"]}
    assert indexed == {"sender_hash", "our_number"}
    assert not indexed & MESSAGE_WRITES
    store.close()


def test_postgresql_updates_a_conversation_in_place() -> None:
    """Every message of a conversation is a HOT update, counted by the server itself."""
    with postgres_schema() as url:
        store = ConversationStore.open(url, SECRET)
        for i in range(6):
            store.record(Inbound("sms", PHONE, LINE, f"calf cramp {i}",
                                 dedupe_key=idempotency_key("message", f"SMhot{i}")), _turn())
        store.record(Inbound("sms", PHONE, LINE, "STOP"), _stop())
        store.close()  # the backends exit, which hands their counts to the statistics
        counts = (0, 0)
        reader = create_engine(url, poolclass=NullPool)
        for _ in range(50):
            with reader.connect() as connection:  # a new session sees fresh counts
                counts = connection.execute(text(  # the test schema's table (search_path)
                    "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                    "WHERE relid = 'conversations'::regclass")).one()
            if counts[0] >= 7:
                break
            time.sleep(0.1)
        reader.dispose()
        # Six messages and a STOP after the first, which inserted the row.
        assert counts == (7, 7)


def test_the_hasher_keeps_only_the_last_number_it_hashed() -> None:
    hasher = SenderHasher("fast-path-secret")
    first, other = hasher.key("+1 555 000 1234"), hasher.key("+15550009876")
    assert hasher.key("+1 555 000 1234") == first != other  # asked again after another
    assert hasher.key("+15550001234") == first  # whitespace never counted
    assert SenderHasher("another-secret").key("+15550001234") != first
    assert first.last4 == "1234" and other.last4 == "9876"


def test_short_text_drops_control_characters_and_caps_either_way() -> None:
    assert short_text("+15550006000", 64) == "+15550006000"
    assert short_text("SM12\x00\x1f34", 64) == "SM1234"
    assert short_text("x" * 100, 8) == "x" * 8 and short_text("\x00" + "y" * 20, 8) == "y" * 8
    assert short_text(None, 8) == "" and short_text("a\ud800b", 8) == "a?b"


def test_a_failed_ordinary_record_on_sqlite_leaves_nothing_and_the_connection_works(
    tmp_path: Any,
) -> None:
    store = ConversationStore.open(sqlite_url(tmp_path), SECRET)
    with store.engine.begin() as connection:  # the reply row's INSERT fails mid-transaction
        connection.exec_driver_sql(
            "CREATE TRIGGER no_replies BEFORE INSERT ON messages WHEN NEW.direction = 'out' "
            "BEGIN SELECT RAISE(ABORT, 'no replies today'); END")
    with pytest.raises(sa_exc.DBAPIError, match="no replies today"):
        store.record(Inbound("sms", PHONE, LINE, "calf cramp", "SM1", "key-1"), _turn())
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM messages").scalar() == 0
        assert connection.exec_driver_sql(  # the context it saved first is undone too
            "SELECT count(*) FROM conversations WHERE last_intent IS NOT NULL").scalar() == 0
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER no_replies")
    # The same kept connection, out of its transaction, records the retry once.
    stored = store.record(Inbound("sms", PHONE, LINE, "calf cramp", "SM1", "key-1"), _turn())
    again = store.record(Inbound("sms", PHONE, LINE, "calf cramp", "SM1", "key-1"), _turn())
    assert (stored.duplicate, again.duplicate, again.text) == (False, True, "Stretch it")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM messages").scalar() == 2
    store.close()


def test_postgresql_pings_a_spare_left_idle_and_replaces_a_dead_one() -> None:
    with postgres_schema() as url:
        store = ConversationStore.open(url, SECRET)
        store.record(Inbound("sms", PHONE, LINE, "calf cramp", "SM1", "key-1"), _turn())
        with store._webhook_connection() as connection:  # the one kept for the next webhook
            kept = connection.connection.dbapi_connection.info.backend_pid
        with store.engine.connect() as other, reading(other):  # the server drops it
            assert other.exec_driver_sql(f"SELECT pg_terminate_backend({kept})").scalar()
        time.sleep(PING_AFTER_IDLE_SECONDS + 0.1)  # idle as long as the pool would ping
        store.record(Inbound("sms", PHONE, LINE, "sore calf", "SM2", "key-2"), _turn())
        with store._webhook_connection() as connection:
            assert connection.connection.dbapi_connection.info.backend_pid != kept
        with store.engine.connect() as other, reading(other):
            assert other.exec_driver_sql("SELECT count(*) FROM messages").scalar() == 4
        store.close()
