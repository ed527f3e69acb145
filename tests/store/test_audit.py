"""The audit trail: recorded per clinic, append-only in the database itself, purged apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from responder import cli
from responder.store import audit
from responder.store.conversation_store import ConversationStore

SECRET = "a-long-random-test-secret"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> ConversationStore:
    opened = ConversationStore.open(database_url, SECRET)
    yield opened
    opened.close()


def _tampering(store: ConversationStore) -> list[str]:
    statements = ["UPDATE audit_events SET actor = 'someone else'",
                  "DELETE FROM audit_events", "UPDATE audit_purges SET cutoff = at",
                  "DELETE FROM audit_purges"]
    if store.engine.dialect.name == "postgresql":
        statements += ["TRUNCATE audit_events", "TRUNCATE audit_purges"]
    return statements


def test_events_are_kept_per_clinic_newest_first(store: ConversationStore) -> None:
    audit.record(store.engine, "riverside", "anna", audit.SIGN_IN, detail="ip=127.0.0.1",
                 at=NOW - timedelta(minutes=5))
    audit.record(store.engine, "riverside", "anna", audit.VIEW_CONVERSATION, "conversation:7",
                 at=NOW)
    audit.record(store.engine, "hilltop", "ben", audit.SIGN_IN, at=NOW)
    rows = audit.events(store.engine, "riverside")
    assert [(r.actor, r.action, r.subject) for r in rows] == [
        ("anna", audit.VIEW_CONVERSATION, "conversation:7"), ("anna", audit.SIGN_IN, "")]
    assert rows[0].at == NOW and rows[1].detail == "ip=127.0.0.1"
    assert [r.action for r in audit.stream(store.engine, "riverside")] == [
        audit.SIGN_IN, audit.VIEW_CONVERSATION]  # the CSV's order: oldest first
    assert [r.actor for r in audit.events(store.engine, "hilltop")] == ["ben"]
    only_views = audit.events(store.engine, "riverside", action=audit.VIEW_CONVERSATION)
    assert [r.subject for r in only_views] == ["conversation:7"]
    assert audit.events(store.engine, "riverside", since=NOW + timedelta(seconds=1)) == []


def test_an_unknown_action_is_refused(store: ConversationStore) -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(store.engine, "riverside", "anna", "conversation.peek")
    assert audit.events(store.engine, "riverside") == []


def test_recorded_in_the_callers_transaction(store: ConversationStore) -> None:
    """A rolled-back action leaves no audit row; a committed one leaves exactly one."""
    with Session(store.engine) as session:
        audit.record(session, "riverside", "anna", audit.CLOSE, "inbox:1")
        session.rollback()
    with Session(store.engine) as session, session.begin():
        audit.record(session, "riverside", "anna", audit.CLOSE, "inbox:2")
    assert [r.subject for r in audit.events(store.engine, "riverside")] == ["inbox:2"]


def test_the_database_refuses_changes_and_deletes(store: ConversationStore) -> None:
    audit.record(store.engine, "riverside", "anna", audit.SIGN_IN, at=NOW)
    audit.purge(store.engine, timedelta(days=365), now=NOW)  # a purge row to tamper with
    for statement in _tampering(store):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as connection:
            connection.execute(text(statement))
    (row,) = audit.events(store.engine, "riverside")
    assert row.actor == "anna"


def test_purge_removes_only_rows_past_retention(store: ConversationStore) -> None:
    audit.record(store.engine, "riverside", "anna", audit.SIGN_IN, at=NOW - timedelta(days=40))
    audit.record(store.engine, "riverside", "anna", audit.SIGN_OUT, at=NOW - timedelta(days=20))
    assert audit.purge(store.engine, timedelta(days=30), now=NOW) == 1
    assert [r.action for r in audit.events(store.engine, "riverside")] == [audit.SIGN_OUT]
    # The purge's cutoff does not open the door to newer rows.
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_events"))
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM audit_purges")).scalar() == 1


def test_purge_command_keeps_audit_rows_for_their_own_retention(
        database_url: str, store: ConversationStore, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC)
    for days in (3, 10, 2500):
        audit.record(store.engine, "riverside", "anna", audit.SIGN_IN,
                     detail=f"{days} days ago", at=now - timedelta(days=days))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CALFLINE_HASH_SECRET", SECRET)
    assert cli.main(["purge", "--older-than", "0"]) == 0  # messages: all; audit: 6 years
    assert [r.detail for r in audit.events(store.engine, "riverside")] == [
        "3 days ago", "10 days ago"]
    monkeypatch.setenv("CALFLINE_AUDIT_RETENTION_DAYS", "7")
    assert cli.main(["purge", "--older-than", "30"]) == 0
    assert [r.detail for r in audit.events(store.engine, "riverside")] == ["3 days ago"]
    assert "purged 1 audit rows older than 7 days" in capsys.readouterr().out
    monkeypatch.setenv("CALFLINE_AUDIT_RETENTION_DAYS", "0")
    assert cli.main(["purge", "--older-than", "30"]) == 2  # refused: would empty the trail
    assert len(audit.events(store.engine, "riverside")) == 1
