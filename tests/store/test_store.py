"""The conversation store: what is recorded, what is not (clear phone numbers), retention."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import MetaData, event, text

from responder import cli
from responder.dialogue.conversation import ConversationState, Turn
from responder.dialogue.replies import Reply
from responder.errors import ConfigError
from responder.nlu.matcher import Match
from responder.store.conversation_store import (
    PROBE_KEY,
    ConversationStore,
    Inbound,
    idempotency_key,
)
from responder.store.models import Base, Meta
from tests.databases import postgres_schema
from tests.twilio_signing import count_messages

PHONE = "+15557654321"
SECRET = "a-long-random-test-secret"


def _turn(intent: str = "cramp_now", text: str = "Stretch it") -> Turn:
    match = Match("calf cramp", "calf cramp", intent, 0.9)
    return Turn(match, Reply(text, f"{intent}.sms"), ConversationState(last_intent=intent))


def _store(database_url: str, secret: str = SECRET) -> ConversationStore:
    return ConversationStore.open(database_url, secret)


def _all_text(store: ConversationStore) -> str:
    """Every value in every table, as text: what a leaked database would reveal."""
    tables = MetaData()
    with store.engine.connect() as connection:
        tables.reflect(connection)
        return "\n".join(repr(row) for t in tables.sorted_tables
                         for row in connection.execute(t.select()))


def test_webhook_records_message_and_reply(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    client.post("/sms", data={"From": PHONE, "To": "+15550001000", "Body": "calf cramp now",
                              "MessageSid": "SM0001"})
    store = client.application.extensions["calfline_store"]
    (conversation,) = store.recent_conversations(["+15550001000"])
    assert conversation.sender_last4 == "4321" and conversation.our_number == "+15550001000"
    inbound, reply = store.messages(conversation.id)
    assert (inbound.direction, inbound.channel, inbound.body) == ("in", "sms", "calf cramp now")
    assert inbound.twilio_sid == "SM0001" and inbound.intent and inbound.confidence is not None
    assert reply.direction == "out" and reply.body and reply.template_id
    assert reply.created_at.tzinfo is not None


def test_sender_is_stored_as_keyed_hash_only(database_url: str) -> None:
    store = _store(database_url)
    store.record(Inbound("sms", PHONE, "+15550001000", "calf cramp"), _turn())
    expected = hmac.new(SECRET.encode(), PHONE.encode(), hashlib.sha256).hexdigest()
    (conversation,) = store.recent_conversations(["+15550001000"])
    assert conversation.sender_hash == expected
    dump = _all_text(store)
    assert "5557654321" not in dump and "7654321" not in dump
    store.close()


def test_no_phone_number_in_the_sqlite_file(client: FlaskClient) -> None:
    for body in ("calf cramp", "STOP", "START", "more"):
        client.post("/sms", data={"From": PHONE, "To": "+15550001000", "Body": body})
    path = Path(client.application.config["DATABASE_URL"].removeprefix("sqlite:///"))
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert b"calf cramp" in raw  # the file really holds the conversation ...
    assert b"5557654321" not in raw and "5557654321".encode("utf-16-le") not in raw


def test_conversations_are_filtered_by_our_numbers(database_url: str) -> None:
    store = _store(database_url)
    store.record(Inbound("sms", PHONE, "+15550001000", "a"), _turn())
    store.record(Inbound("sms", "+15550002222", "+15550002000", "b"), _turn())
    assert [c.our_number for c in store.recent_conversations(["+15550001000"])] == [
        "+15550001000"]
    assert len(store.recent_conversations(["+15550001000", "+15550002000"])) == 2
    assert store.recent_conversations([]) == []
    other = store.recent_conversations(["+15550002000"])[0]
    assert store.messages(other.id, our_numbers=["+15550001000"]) == []  # not that clinic's
    assert len(store.messages(other.id, our_numbers=["+15550002000"])) == 2
    store.close()


def test_schema_survives_a_restart_and_matches_the_models(database_url: str) -> None:
    store = _store(database_url)
    store.record(Inbound("sms", PHONE, "+15550001000", "kept"), _turn())
    store.close()
    again = _store(database_url)  # migrations run again: a no-op, nothing lost
    (conversation,) = again.recent_conversations(["+15550001000"])
    assert again.messages(conversation.id)[0].body == "kept"
    with again.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    again.close()


def test_concurrent_start_ups_migrate_once(database_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            _store(database_url).close()
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = _store(database_url)
    with store.engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    store.close()


def test_a_changed_hash_secret_stops_start_up(database_url: str) -> None:
    _store(database_url).close()
    with pytest.raises(ConfigError, match="CALFLINE_HASH_SECRET"):
        _store(database_url, secret="a-different-secret")


def test_same_dedupe_key_from_many_threads_gives_one_row(database_url: str) -> None:
    store = _store(database_url)
    key = idempotency_key("sms", "SM" + "c" * 32)
    barrier = threading.Barrier(6)
    replies = []

    def send(n: int) -> None:
        barrier.wait()
        turn = _turn(text=f"reply {n}")
        replies.append(store.record(Inbound("sms", PHONE, "+1555", "x", "SMc", key), turn))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.text for r in replies}) == 1
    assert sum(not r.duplicate for r in replies) == 1
    (conversation,) = store.recent_conversations(["+1555"])
    assert len(store.messages(conversation.id)) == 2
    store.close()


def test_purge_removes_old_messages_but_keeps_opt_outs(database_url: str) -> None:
    store = _store(database_url)
    old = datetime.now(UTC) - timedelta(days=40)
    store.record(Inbound("sms", PHONE, "+1555", "old"), _turn(), now=old)
    stop = Turn(Match("STOP", "stop", "opt_out", 1.0), Reply("", "opt_out.sms"),
                ConversationState(opted_out=True), opt_change=True)
    store.record(Inbound("sms", "+15550003333", "+1555", "STOP"), stop, now=old)
    store.record(Inbound("sms", "+15550004444", "+1555", "new"), _turn())
    count = store.purge(timedelta(days=30))
    assert count.messages == 4 and count.conversations == 1
    remaining = {c.sender_last4: c for c in store.recent_conversations(["+1555"])}
    assert set(remaining) == {"3333", "4444"}
    assert remaining["3333"].opted_out and store.messages(remaining["3333"].id) == []
    assert store.state("+15550003333", "+1555").opted_out
    store.close()


def test_purge_command(database_url: str, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str], make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    client.post("/sms", data={"From": PHONE, "To": "+1555", "Body": "calf cramp"})
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert cli.main(["purge", "--older-than", "1"]) == 0
    assert count_messages(client) == 2  # a minute-old message is not a day old
    assert cli.main(["purge", "--older-than", "0"]) == 0
    assert count_messages(client) == 0
    assert "2 messages" in capsys.readouterr().out
    assert cli.main(["purge", "--older-than", "-3"]) == 2


def test_two_workers_probing_a_fresh_database_at_once_both_succeed() -> None:
    """The readiness probe writes its row whether or not another worker has just written
    it: here the other worker's row is committed the moment our probe's write goes out,
    as when two workers' replayers probe a fresh PostgreSQL database together (SQLite's
    writers queue on one lock, so nobody can write in between there)."""
    with postgres_schema() as url:
        ours, theirs = _store(url), _store(url)
        wrote_first: list[bool] = []

        @event.listens_for(ours.engine, "before_cursor_execute")
        def _the_other_worker_first(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            if (statement.lstrip().upper().startswith("INSERT INTO CALFLINE_META")
                    and not wrote_first):
                wrote_first.append(True)
                with theirs.engine.begin() as other:
                    other.execute(Meta.__table__.insert().values(  # type: ignore[attr-defined]
                        key=PROBE_KEY, value="written by the other worker"))

        try:
            ours.write_probe()  # raised IntegrityError (UniqueViolation) when it raced
            assert wrote_first == [True]
            with ours.engine.connect() as connection:
                rows = connection.execute(text("SELECT key, value FROM calfline_meta "
                                               "WHERE key = :k"), {"k": PROBE_KEY}).all()
            assert len(rows) == 1 and rows[0][1] != "written by the other worker"  # ours last
        finally:
            ours.close()
            theirs.close()
