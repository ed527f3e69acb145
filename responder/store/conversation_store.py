"""The conversation store: every message and reply, opt-outs and context, in SQL.

The web app keeps one ConversationStore in `app.extensions["calfline_store"]`.
Its public API (all times are aware UTC datetimes):

    store.exchange(inbound, decide) -> StoredReply      # state, decide(state), record
    store.state(sender, our_number) -> ConversationState
    store.find_reply(dedupe_key) -> StoredReply | None
    store.record(inbound, turn) -> StoredReply          # one row per dedupe key
    store.recent_conversations(our_numbers, limit) -> list[ConversationSummary]
    store.messages(conversation_id, our_numbers=None) -> list[MessageRecord]
    store.purge(older_than) -> PurgeCount
    store.ping()
    store.write_probe()                                  # a real write: can it take one?
    store.replay(spooled_turn) -> StoredReply           # a turn answered during an outage
    store.opted_out_pairs() -> set[(sender_hash, our_number)]
    store.guard                                          # time limit and circuit breaker

`sender` is the caller's phone number as Twilio sends it (`From`); the store
keeps only its HMAC-SHA256 and last 4 digits. `our_number` is `To`.

A webhook costs one write transaction on SQLite (the state read inside it), or on
PostgreSQL usually one read and one statement (responder/store/statements.py has
the statements and why they keep a re-sent webhook to one record).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
import weakref
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Executable,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from responder.dialogue.conversation import SILENT_TEMPLATE, ConversationState, Turn
from responder.dialogue.respond import MAX_MESSAGE_CHARS, clean_text
from responder.errors import ConfigError
from responder.nlu.matcher import Match
from responder.store.checkpointer import WalCheckpointer
from responder.store.clinic_conversations import possible_row_id
from responder.store.database import (
    PING_AFTER_IDLE_SECONDS,
    autocommit,
    database_url,
    driver_transaction,
    harden,
    migrate,
    open_engine,
    reading,
    relaxed_commit,
    sqlite_file,
    writer_queue,
)
from responder.store.guard import StoreGuard, raise_if_abandoned
from responder.store.models import Conversation, Message, Meta
from responder.store.spare_connection import SpareConnection
from responder.store.statements import StoreStatements
from responder.store.turns import Inbound, SpooledTurn, StoredReply, check_answer

if TYPE_CHECKING:
    from flask import Flask

HASH_KEY_ID = "sender_hash_key_id"
EXTENSION = "calfline_store"
# A pending check question is kept in the clarify columns as (CHECK_MARK, the
# intent to answer on NO): no intent is called "check", so it cannot collide.
CHECK_MARK = "check"
# Development only: set CALFLINE_HASH_SECRET in production (and never change it after).
DEV_HASH_SECRET = "calfline-development-hash-secret"
# Seconds the store guard waits for a webhook's database work (CALFLINE_STORE_TIMEOUT).
DEFAULT_STORE_TIMEOUT = 1.0
PROBE_KEY = "write_probe"
DATABASE_ID = "database_id"
log = logging.getLogger("calfline.store")


def utcnow() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


def short_text(value: str | None, limit: int) -> str:
    """Cap a field and drop control characters (PostgreSQL text cannot hold NUL)."""
    value = (value or "")[: limit * 2].encode("utf-8", "replace").decode("utf-8")
    if value.isprintable():  # nearly always: one C loop instead of one per character
        return value[:limit]
    return "".join(ch for ch in value if ch.isprintable())[:limit]


def idempotency_key(channel: str, *parts: str | None) -> str | None:
    """Hash Twilio's identifiers for one webhook (MessageSid; CallSid + turn); None if absent."""
    if not parts or not all(parts):
        return None
    joined = "\x1f".join([channel, *(p or "" for p in parts)])
    return hashlib.sha256(joined.encode("utf-8", "replace")).hexdigest()


def _inbound_row(inbound: Inbound, match: Match, now: datetime) -> dict[str, Any]:
    """The messages row of an inbound message, but its conversation_id."""
    return {"direction": "in", "channel": short_text(inbound.channel, 8), "created_at": now,
            "body": clean_text(inbound.body)[:MAX_MESSAGE_CHARS], "intent": match.intent,
            "confidence": match.confidence, "template_id": None,
            "twilio_sid": short_text(inbound.twilio_sid, 64) or None,
            "dedupe_key": inbound.dedupe_key, "reply_to_id": None, "care": match.care,
            "check_answer": check_answer(match), "language": match.language}


def _reply_row(inbound_row: dict[str, Any], turn: Turn, text: str, template: str,
               conversation_id: int, inbound_id: int) -> dict[str, Any]:
    """The messages row of the reply to `inbound_row`: the text that goes out."""
    return {"conversation_id": conversation_id, "direction": "out",
            "channel": inbound_row["channel"], "created_at": inbound_row["created_at"],
            "body": text, "intent": turn.match.intent, "confidence": None,
            "template_id": template, "twilio_sid": None, "dedupe_key": None,
            "reply_to_id": inbound_id, "language": turn.reply.language}


def _state_of(row: Any) -> ConversationState:
    """The ConversationState of the store's state row (None: a sender not seen yet)."""
    if row is None:
        return ConversationState()
    opted_out, last_intent, first, second, context_at, language, held_by, held_at, \
        held_reply = row
    # Taken over by staff: the hold lasts from their latest action (frontdesk/takeover.py).
    held_since = max(t for t in (held_at, held_reply) if t) if held_by and held_at else None
    if first == CHECK_MARK:  # a pending check question: (CHECK_MARK, its NO answer)
        return ConversationState(opted_out=opted_out, last_intent=last_intent,
                                 context_at=context_at, check=second,
                                 held_since=held_since, language=language)
    return ConversationState(opted_out=opted_out, last_intent=last_intent,
                             clarify=(first, second) if first and second else None,
                             context_at=context_at, held_since=held_since, language=language)


def _sender_of(key: SenderKey, number: str, now: datetime) -> dict[str, Any]:
    """The conversation row's key and timestamps, as the record's statements take them."""
    return {"sender_hash": key.hash, "sender_last4": key.last4, "our_number": number,
            "now": now}


def _needs_full_record(turn: Turn) -> bool:
    """A turn that changes the opt-out (fsynced) or answers in a conversation staff
    hold (which keeps the patient's number) goes through ConversationStore._record's
    full path; every other turn takes the one- or three-statement record."""
    return turn.opt_change is not None or turn.state.held_since is not None


def _context_of(state: ConversationState) -> dict[str, Any]:
    """The conversation columns that keep `state`'s context for the next message."""
    first, second = (CHECK_MARK, state.check) if state.check else state.clarify or (None, None)
    return {"last_intent": state.last_intent, "clarify_first": first,
            "clarify_second": second, "context_at": state.context_at,
            "language": state.language}


class _AlreadyRecorded(Exception):
    """A webhook's dedupe key is taken: undo this copy's transaction, answer the first's."""


class _FullRecord(Exception):
    """The turn changes the opt-out or the conversation is held: undo the driver's
    transaction and record it on the full path (ConversationStore._record)."""

    def __init__(self, turn: Turn) -> None:
        super().__init__("recorded on the full path")
        self.turn = turn


@dataclass(frozen=True)
class SenderKey:
    """How a phone number is stored: a keyed hash and its last 4 digits."""

    hash: str
    last4: str


class SenderHasher:
    """HMAC-SHA256 with CALFLINE_HASH_SECRET: equal numbers match, none can be read back."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode("utf-8")
        self._keyed = hmac.new(self._secret, digestmod=hashlib.sha256)  # copied per number
        # The last number hashed and its key: a webhook asks twice (the sender limit,
        # then the store), and one tuple is replaced whole, so threads never see half.
        self._last: tuple[str | None, SenderKey] | None = None

    def key(self, number: str | None) -> SenderKey:
        """Hash one number (whitespace ignored) and keep its last 4 digits."""
        last = self._last
        if last is not None and last[0] == number:
            return last[1]
        given, number = number, "".join((number or "").split())[:256]
        digest = self._keyed.copy()
        digest.update(number.encode("utf-8", "replace"))
        digits = "".join(ch for ch in number if ch.isascii() and ch.isdigit())
        key = SenderKey(digest.hexdigest(), digits[-4:])
        self._last = (given, key)
        return key

    @property
    def key_id(self) -> str:
        """Fingerprint of the secret, kept in the database to catch a changed secret."""
        return hmac.new(self._secret, b"calfline key id", hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class ConversationSummary:
    """A conversation as a clinic console lists it: no phone number, last 4 digits only."""

    id: int
    our_number: str
    sender_hash: str
    sender_last4: str
    created_at: datetime
    updated_at: datetime
    opted_out: bool
    last_intent: str | None


@dataclass(frozen=True)
class MessageRecord:
    """One stored message or reply."""

    id: int
    conversation_id: int
    direction: str
    channel: str
    created_at: datetime
    body: str
    intent: str | None
    confidence: float | None
    template_id: str | None
    twilio_sid: str | None


@dataclass(frozen=True)
class PurgeCount:
    """What `calfline purge` removed."""

    messages: int
    conversations: int


def _count(session: Session, statement: Executable) -> int:
    result = cast(CursorResult[Any], session.execute(statement))
    return int(result.rowcount)


def _summary(row: Conversation) -> ConversationSummary:
    return ConversationSummary(row.id, row.our_number, row.sender_hash, row.sender_last4,
                               row.created_at, row.updated_at, row.opted_out, row.last_intent)


def _record(row: Message) -> MessageRecord:
    return MessageRecord(row.id, row.conversation_id, row.direction, row.channel, row.created_at,
                         row.body, row.intent, row.confidence, row.template_id, row.twilio_sid)


def _spare_for(engine: Engine) -> SpareConnection | None:
    """A SQLite file's spare, or PostgreSQL's with its idle ping; none in memory."""
    if engine.dialect.name != "sqlite":
        return SpareConnection(engine, ping_after=PING_AFTER_IDLE_SECONDS)
    return SpareConnection(engine) if sqlite_file(engine) is not None else None


class ConversationStore:
    """Conversations and messages in one SQL database; safe across workers and threads."""

    def __init__(self, engine: Engine, hasher: SenderHasher,
                 timeout: float = DEFAULT_STORE_TIMEOUT) -> None:
        self.engine = engine
        self.hasher = hasher
        self.sql = StoreStatements(engine)
        self._writers = writer_queue(engine)  # SQLite: one webhook writer at a time
        self.guard = StoreGuard(engine, timeout)
        # The last webhook's connection is kept for the next (spare_connection.py); a
        # PostgreSQL one is pinged first when idle as long as the pool's would be.
        self._spare = _spare_for(engine)
        # A SQLite file's WAL is checkpointed by a thread, outside the writer queue.
        database = sqlite_file(engine)
        self._checkpointer = WalCheckpointer(database, self._writers) \
            if database is not None else None
        if self._checkpointer is not None:  # a store dropped unclosed (tests) ends it too
            weakref.finalize(self, self._checkpointer.stop)
        # Which database this is (a random id kept in it), so a spooled turn is never
        # replayed into another one; "" until open() has read it.
        self.database_id = ""

    @classmethod
    def open(cls, url: str, hash_secret: str, timeout: float | None = None) -> ConversationStore:
        """Connect, migrate to the newest schema, and check the hash secret matches.

        `timeout` bounds each statement and lock wait (see open_engine) and the guard's
        wait for a webhook's work; None leaves statements unbounded (the command line).
        """
        engine = open_engine(url, timeout)
        store = cls(engine, SenderHasher(hash_secret), timeout or DEFAULT_STORE_TIMEOUT)
        try:
            migrate(engine)
            store._check_hash_key()
            store.database_id = store._meta_value(DATABASE_ID, uuid.uuid4().hex)
        finally:
            engine.dispose()  # no connection crosses a worker fork (gunicorn --preload)
        return store

    def _meta_value(self, key: str, default: str) -> str:
        """The `calfline_meta` value of `key`, written as `default` by the first to ask."""
        with Session(self.engine) as session, session.begin():
            row = session.get(Meta, key)
            if row is None:
                try:
                    with session.begin_nested():
                        session.add(Meta(key=key, value=default))
                    return default
                except IntegrityError:  # another worker wrote it first
                    row = session.get(Meta, key, populate_existing=True)
            return row.value if row is not None else default

    def _check_hash_key(self) -> None:
        if self._meta_value(HASH_KEY_ID, self.hasher.key_id) != self.hasher.key_id:
            # A new secret would silently "forget" every opt-out: refuse instead.
            raise ConfigError(
                "CALFLINE_HASH_SECRET differs from the secret this database was written "
                "with; opt-outs would no longer match. Restore the old secret."
            )

    def ping(self) -> None:
        """Round-trip to the database; raise if it does not answer."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def write_probe(self) -> None:
        """Write one small row and commit: raise if the database cannot take a write now.

        One upsert: every worker's replayer and /readyz probe, and on a fresh database
        two of them can be first at once."""
        with self._writers, self.engine.begin() as connection:
            connection.execute(self.sql.write_probe,
                               {"key": PROBE_KEY, "value": utcnow().isoformat()})

    def opted_out_pairs(self) -> set[tuple[str, str]]:
        """Every (sender_hash, our_number) that is opted out: the local copy's contents."""
        with self.engine.connect() as connection, reading(connection):
            return {(h, n) for h, n in connection.execute(self.sql.opted_out)}

    def close(self) -> None:
        """Close pooled connections (before a fork, or at shutdown)."""
        self.guard.shutdown()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        if self._spare is not None:
            self._spare.close()
        self.engine.dispose()

    def _webhook_connection(self) -> AbstractContextManager[Connection]:
        """The connection for one webhook's store work: on a SQLite file the last
        webhook's, kept for it (spare_connection.py), else one from the pool.
        The first in each process starts its WAL checkpointer (checkpointer.py)."""
        if self._checkpointer is not None:
            self._checkpointer.ensure_running()
        return self._spare.connection() if self._spare is not None else self.engine.connect()

    def state(self, sender: str, our_number: str) -> ConversationState:
        """Return the opt-out status and context of a sender on one of our numbers."""
        key, number = self.hasher.key(sender), short_text(our_number, 64)
        with self._webhook_connection() as connection:
            return self._state(connection, key, number)

    def find_reply(self, dedupe_key: str) -> StoredReply | None:
        """Return the reply already recorded for a webhook, if it was seen before."""
        with self._webhook_connection() as connection, reading(connection):
            return self._reply_for(connection, dedupe_key)

    def record(self, inbound: Inbound, turn: Turn, now: datetime | None = None) -> StoredReply:
        """Store a message, its reply and the new state atomically; a re-sent webhook
        (same dedupe key, even concurrently) gets the first copy's reply instead."""
        key, number = self.hasher.key(inbound.sender), short_text(inbound.our_number, 64)
        with self._webhook_connection() as connection:
            return self._record(connection, key, number, inbound, turn, now or utcnow())

    def exchange(self, inbound: Inbound, decide: Callable[[ConversationState], Turn],
                 now: datetime | None = None) -> StoredReply:
        """Read the sender's state, answer with decide(state), and record both: one
        connection (the spare on a SQLite file); on SQLite one write transaction
        (_exchange_on_driver), elsewhere a read and the record (see record())."""
        key, number = self.hasher.key(inbound.sender), short_text(inbound.our_number, 64)
        now = now or utcnow()
        with self._webhook_connection() as connection:
            if "state" in self.sql.driver and "touch_with_state" in self.sql.driver \
                    and not connection.in_transaction():
                return self._exchange_on_driver(connection, key, number, inbound, decide, now)
            turn = decide(self._state(connection, key, number))
            return self._record(connection, key, number, inbound, turn, now)

    def _exchange_on_driver(self, connection: Connection, key: SenderKey, number: str,
                            inbound: Inbound, decide: Callable[[ConversationState], Turn],
                            now: datetime) -> StoredReply:
        """SQLite: the state read, decide() and the record in one write transaction.

        Read on its own, the state cost a second transaction: its locks and, as the
        other workers' writes empty this connection's page cache at every new
        transaction, its pages read twice. Inside the write, the pages it reads are
        the ones the record changes. decide() is given the match already made
        (answer_and_record), so the write lock is held for what needs the state only.
        A turn that changes the opt-out or finds staff holding the conversation is
        undone and recorded by _record(), with its fsync.
        """
        params = {"sender_hash": key.hash, "our_number": number}

        def read_decide_write() -> StoredReply:
            rows = self._rows(connection, "state", self.sql.state, params)
            turn = decide(_state_of(rows[0] if rows else None))
            if _needs_full_record(turn):
                raise _FullRecord(turn)
            return self._write_on_driver(connection, inbound, turn, {
                **_sender_of(key, number, now), **_context_of(turn.state)})

        try:
            return self._in_driver_write(connection, inbound, read_decide_write)
        except _FullRecord as full:  # rolled back before anything was written
            return self._record(connection, key, number, inbound, full.turn, now)

    def _state(self, connection: Connection, key: SenderKey, number: str) -> ConversationState:
        params = {"sender_hash": key.hash, "our_number": number}
        if not connection.in_transaction():
            # No transaction open: the one SELECT runs in autocommit, its own snapshot
            # (on SQLite without the write lock), which is all reading() gets;
            # SQLAlchemy's begin and commit around it did nothing but cost.
            rows = self._in_autocommit(connection, "state", self.sql.state, params)
        else:
            with reading(connection):
                rows = self._rows(connection, "state", self.sql.state, params)
        return _state_of(rows[0] if rows else None)

    def _reply_for(self, connection: Connection, dedupe_key: str) -> StoredReply | None:
        row = connection.execute(self.sql.reply_for, {"dedupe_key": dedupe_key}).first()
        if row is None:
            return None
        body, template_id, conversation_id, intent = row
        return StoredReply(body, template_id or "", conversation_id, intent, duplicate=True)

    def _record(self, connection: Connection, key: SenderKey, number: str, inbound: Inbound,
                turn: Turn, now: datetime) -> StoredReply:
        sql, state = self.sql, turn.state
        context = _context_of(state)
        sender = _sender_of(key, number, now)
        if not _needs_full_record(turn):
            if sql.record_in_one is not None:
                return self._record_in_one(connection, inbound, turn, {**sender, **context})
            if "touch_with_state" in sql.driver:
                return self._in_driver_write(connection, inbound, lambda: self._write_on_driver(
                    connection, inbound, turn, {**sender, **context}))
        inbound_row = _inbound_row(inbound, turn.match, now)  # built before the queue
        # No fsync inside the writers' queue, which every other writer waits on; a
        # changed opt-out is synced once the queue is free (harden), and survives even
        # a power cut before the webhook answers. The PRAGMAs are the connection's own
        # business: set outside the queue too.
        with relaxed_commit(connection), self._writers, connection.begin() as transaction:
            # The conversation row stays locked until commit; opted_out is as of now.
            if turn.opt_change is None:  # the context is saved unless opted out meanwhile
                conversation_id, opted_out = self._rows(
                    connection, "touch_with_state", sql.touch_conversation_with_state,
                    {**sender, **context})[0]
            else:
                conversation_id, opted_out = connection.execute(
                    sql.touch_conversation, sender).one()
            inserted = self._rows(connection, "inbound", sql.insert_inbound,
                                  {**inbound_row, "conversation_id": conversation_id})
            inbound_id = inserted[0][0] if inserted else None
            if inbound_id is None:  # the dedupe key is taken: a re-sent webhook
                stored = self._reply_for(connection, inbound.dedupe_key or "")
                transaction.rollback()  # and with it the context saved above
                if stored is None:  # never written: both rows go in one transaction
                    raise RuntimeError("a recorded message has no reply row")
                return stored
            text_, template = turn.reply.text, turn.reply.template_id
            if opted_out and turn.opt_change is not False and inbound.channel == "sms":
                # Opted out meanwhile (a STOP on another worker): send nothing, keep state.
                # Opt-out is about texts (Twilio error 21610); a call is still answered.
                text_, template = "", SILENT_TEMPLATE
            elif turn.opt_change is not None:
                connection.execute(sql.save_state_and_opt_out, {
                    **context, "conversation_id": conversation_id,
                    "opted_out": turn.opt_change,
                    "opted_out_at": now if turn.opt_change else None})
            self._rows(connection, "reply", sql.insert_reply, _reply_row(
                inbound_row, turn, text_, template, conversation_id, inbound_id))
            if state.held_since is not None and inbound.channel == "sms":
                connection.execute(sql.keep_held_number, {
                    "conversation_id": conversation_id,
                    "held_number": short_text(inbound.sender, 64)})
        if turn.opt_change is not None:
            harden(connection)
        return StoredReply(text_, template, conversation_id, turn.match.intent)

    def _in_driver_write(self, connection: Connection, inbound: Inbound,
                         write: Callable[[], StoredReply]) -> StoredReply:
        """SQLite: write() in one write transaction on the driver
        (database.driver_transaction), behind the writer queue and without the fsync,
        for a message that leaves the opt-out alone; a re-sent copy (write() raised
        _AlreadyRecorded) gets the first reply, read once the transaction is undone."""
        try:
            with relaxed_commit(connection), self._writers, driver_transaction(connection):
                return write()
        except _AlreadyRecorded:  # rolled back, and with it the context saved
            return self._first_reply(connection, inbound)

    def _write_on_driver(self, connection: Connection, inbound: Inbound, turn: Turn,
                         conversation: dict[str, Any]) -> StoredReply:
        """The record's three statements, inside a driver_transaction(); raises
        _AlreadyRecorded for a re-sent webhook, which the caller's rollback undoes."""
        inbound_row = _inbound_row(inbound, turn.match, conversation["now"])
        text_, template = turn.reply.text, turn.reply.template_id
        # The conversation row stays locked until commit; opted_out is as of now.
        conversation_id, opted_out = self._rows(
            connection, "touch_with_state", self.sql.touch_conversation_with_state,
            conversation)[0]
        inserted = self._rows(connection, "inbound", self.sql.insert_inbound,
                              {**inbound_row, "conversation_id": conversation_id})
        if not inserted:  # the dedupe key is taken: a re-sent webhook
            raise _AlreadyRecorded
        if opted_out and inbound.channel == "sms":
            # Opted out meanwhile (a STOP on another worker): send nothing.
            text_, template = "", SILENT_TEMPLATE
        self._rows(connection, "reply", self.sql.insert_reply, _reply_row(
            inbound_row, turn, text_, template, conversation_id, inserted[0][0]))
        return StoredReply(text_, template, conversation_id, turn.match.intent)

    def _first_reply(self, connection: Connection, inbound: Inbound) -> StoredReply:
        """The reply recorded for a re-sent webhook's first copy, read after its own
        transaction was undone."""
        with reading(connection):
            stored = self._reply_for(connection, inbound.dedupe_key or "")
        if stored is None:  # never written: both rows go in one transaction
            raise RuntimeError("a recorded message has no reply row")
        return stored

    def _rows(self, connection: Connection, name: str, statement: Executable,
              params: dict[str, Any]) -> list[Any]:
        """Run one of the record's statements: on SQLite through the driver's own
        cursor (store/driver_statement.py), elsewhere through SQLAlchemy."""
        driver = self.sql.driver.get(name)
        if driver is not None:
            return driver.rows(connection, params)
        result = connection.execute(statement, params)
        return list(result.all()) if result.returns_rows else []

    def _in_autocommit(self, connection: Connection, name: str, statement: Executable,
                       params: dict[str, Any]) -> list[Any]:
        """One statement as its own transaction (no BEGIN/COMMIT round trips): on the
        driver's cursor when the store has it compiled (store/driver_statement.py)."""
        driver = self.sql.driver.get(name)
        if driver is None:
            with reading(connection):
                return self._rows(connection, name, statement, params)
        raise_if_abandoned()  # as the begin event would
        with autocommit(connection):
            return driver.rows(connection, params)

    def _record_in_one(self, connection: Connection, inbound: Inbound, turn: Turn,
                       conversation: dict[str, Any]) -> StoredReply:
        """PostgreSQL, a message that leaves the opt-out alone: the record as one
        statement in autocommit (statements.record_in_one_statement says how it keeps
        a re-sent webhook to one record); a re-sent copy gets the first reply."""
        assert self.sql.record_in_one is not None
        match, reply = turn.match, turn.reply
        rows = self._in_autocommit(connection, "record_in_one", self.sql.record_in_one, {
            **conversation, "channel": short_text(inbound.channel, 8),
            "body": clean_text(inbound.body)[:MAX_MESSAGE_CHARS],
            "intent": match.intent, "confidence": match.confidence,
            "twilio_sid": short_text(inbound.twilio_sid, 64) or None,
            "dedupe_key": inbound.dedupe_key, "care": match.care,
            "check_answer": check_answer(match), "message_language": match.language,
            # Opted out meanwhile (a STOP on another worker): an SMS gets no reply;
            # opt-out is about texts (Twilio error 21610), a call is still answered.
            "may_silence": inbound.channel == "sms",
            "reply_body": reply.text, "template_id": reply.template_id,
            "reply_language": reply.language})
        row = rows[0] if rows else None
        if row is not None:
            conversation_id, text_, template = row
            return StoredReply(text_, template or "", conversation_id, match.intent)
        with reading(connection):  # a re-sent webhook: its first reply
            stored = self._reply_for(connection, inbound.dedupe_key or "")
        if stored is None:  # never written: both rows go in one statement
            raise RuntimeError("a recorded message has no reply row")
        return stored

    def replay(self, turn: SpooledTurn) -> StoredReply:
        """Record a turn answered while the database was away, once per dedupe key.

        The reply recorded is the one that went out. The turn is older than what the
        database may have learnt since, so it leaves the context alone and changes the
        opt-out only when no later message of the sender has come in.
        """
        if turn.database and self.database_id and turn.database != self.database_id:
            raise ValueError("the turn was spooled for another database")
        inbound, now = turn.inbound, turn.at
        key, number = self.hasher.key(inbound.sender), short_text(inbound.our_number, 64)
        sql, channel = self.sql, short_text(inbound.channel, 8)
        with self.engine.connect() as connection, self._writers, \
                connection.begin() as transaction:
            conversation_id, _ = connection.execute(sql.touch_conversation_replayed, {
                "sender_hash": key.hash, "sender_last4": key.last4, "our_number": number,
                "now": now}).one()
            inbound_id = connection.execute(sql.insert_inbound, {
                "conversation_id": conversation_id, "direction": "in", "channel": channel,
                "created_at": now, "body": clean_text(inbound.body)[:MAX_MESSAGE_CHARS],
                "intent": turn.intent, "confidence": turn.confidence, "template_id": None,
                "twilio_sid": short_text(inbound.twilio_sid, 64) or None,
                "dedupe_key": inbound.dedupe_key, "reply_to_id": None,
                "care": turn.care, "check_answer": turn.check_answer}).scalar()
            if inbound_id is None:  # recorded before: by the webhook itself, or a replay
                stored = self._reply_for(connection, inbound.dedupe_key or "")
                transaction.rollback()
                if stored is None:
                    raise RuntimeError("a recorded message has no reply row")
                return stored
            if turn.opt_change is not None and connection.execute(
                    sql.later_inbound, {"conversation_id": conversation_id, "now": now}
            ).first() is None:
                connection.execute(sql.set_opt_out, {
                    "conversation_id": conversation_id, "opted_out": turn.opt_change,
                    "opted_out_at": now if turn.opt_change else None})
            connection.execute(sql.insert_reply, {
                "conversation_id": conversation_id, "direction": "out", "channel": channel,
                "created_at": now, "body": turn.reply, "intent": turn.intent,
                "confidence": None, "template_id": turn.template_id, "twilio_sid": None,
                "dedupe_key": None, "reply_to_id": inbound_id})
        return StoredReply(turn.reply, turn.template_id, conversation_id, turn.intent)

    def recent_conversations(self, our_numbers: Iterable[str],
                             limit: int = 50) -> list[ConversationSummary]:
        """Return the latest conversations on these numbers (a clinic's `To` numbers)."""
        numbers = list(our_numbers)
        if not numbers:
            return []
        stmt = (select(Conversation).where(Conversation.our_number.in_(numbers))
                .order_by(Conversation.updated_at.desc(), Conversation.id.desc()).limit(limit))
        with Session(self.engine) as session:
            return [_summary(row) for row in session.scalars(stmt)]

    def messages(self, conversation_id: int, our_numbers: Iterable[str] | None = None,
                 limit: int = 500) -> list[MessageRecord]:
        """Return a conversation's messages oldest first; empty unless it is on our_numbers."""
        if not possible_row_id(self.engine, conversation_id):
            return []
        stmt = select(Message).join(Conversation).where(Message.conversation_id == conversation_id)
        if our_numbers is not None:
            stmt = stmt.where(Conversation.our_number.in_(list(our_numbers)))
        stmt = stmt.order_by(Message.created_at, Message.id).limit(limit)
        with Session(self.engine) as session:
            return [_record(row) for row in session.scalars(stmt)]

    def purge(self, older_than: timedelta, now: datetime | None = None) -> PurgeCount:
        """Delete messages older than the cutoff and idle conversations; keep opt-outs."""
        cutoff = (now or utcnow()) - older_than
        with Session(self.engine) as session, session.begin():
            replies = delete(Message).where(Message.created_at < cutoff,
                                            Message.reply_to_id.is_not(None))
            inbound = delete(Message).where(Message.created_at < cutoff)
            removed = _count(session, replies) + _count(session, inbound)
            has_messages = select(func.count(Message.id)).where(
                Message.conversation_id == Conversation.id).scalar_subquery()
            idle = (Conversation.updated_at < cutoff) & (has_messages == 0)
            conversations = _count(
                session, delete(Conversation).where(idle, Conversation.opted_out.is_(False)))
            # An opted-out sender stays on the list forever, but without any context.
            session.execute(update(Conversation).where(idle).values(
                last_intent=None, clarify_first=None, clarify_second=None, context_at=None))
            return PurgeCount(removed, conversations)


def install_store(app: Flask) -> ConversationStore:
    """Open (and migrate) the app's store into app.extensions["calfline_store"]."""
    secret = app.config["HASH_SECRET"]
    if not secret:
        secret = DEV_HASH_SECRET
        if app.config["TWILIO_AUTH_TOKEN"] or app.config["DATABASE_URL"]:
            log.warning("CALFLINE_HASH_SECRET is not set: phone numbers are hashed with a "
                        "public development key. Set a long random secret and keep it.")
    store = ConversationStore.open(database_url(app.config["DATABASE_URL"], app.instance_path),
                                   secret, float(app.config["STORE_TIMEOUT"]))
    app.extensions[EXTENSION] = store
    return store
