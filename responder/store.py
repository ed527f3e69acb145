"""The conversation store: every message and reply, opt-outs and context, in SQL.

The web app keeps one ConversationStore in `app.extensions["calfline_store"]`.
Its public API (all times are aware UTC datetimes):

    store.state(sender, our_number) -> ConversationState
    store.find_reply(dedupe_key) -> StoredReply | None
    store.record(inbound, turn) -> StoredReply          # one row per dedupe key
    store.recent_conversations(our_numbers, limit) -> list[ConversationSummary]
    store.messages(conversation_id, our_numbers=None) -> list[MessageRecord]
    store.purge(older_than) -> PurgeCount
    store.ping()

`sender` is the caller's phone number as Twilio sends it (`From`); the store
keeps only its HMAC-SHA256 and last 4 digits. `our_number` is `To`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, Engine, Executable, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from responder.conversation import SILENT_TEMPLATE, ConversationState, Turn
from responder.database import database_url, migrate, open_engine
from responder.errors import ConfigError
from responder.models import Conversation, Message, Meta
from responder.respond import MAX_MESSAGE_CHARS, clean_text

if TYPE_CHECKING:
    from flask import Flask

HASH_KEY_ID = "sender_hash_key_id"
EXTENSION = "calfline_store"
# Development only: set CALFLINE_HASH_SECRET in production (and never change it after).
DEV_HASH_SECRET = "calfline-development-hash-secret"
log = logging.getLogger("calfline.store")


def utcnow() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


def short_text(value: str | None, limit: int) -> str:
    """Cap a field and drop control characters (PostgreSQL text cannot hold NUL)."""
    value = (value or "")[: limit * 2].encode("utf-8", "replace").decode("utf-8")
    return "".join(ch for ch in value if ch.isprintable())[:limit]


def idempotency_key(channel: str, *parts: str | None) -> str | None:
    """Hash Twilio's identifiers for one webhook (MessageSid; CallSid + turn); None if absent."""
    if not parts or not all(parts):
        return None
    joined = "\x1f".join([channel, *(p or "" for p in parts)])
    return hashlib.sha256(joined.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class SenderKey:
    """How a phone number is stored: a keyed hash and its last 4 digits."""

    hash: str
    last4: str


class SenderHasher:
    """HMAC-SHA256 with CALFLINE_HASH_SECRET: equal numbers match, none can be read back."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode("utf-8")

    def key(self, number: str | None) -> SenderKey:
        """Hash one number (whitespace ignored) and keep its last 4 digits."""
        number = "".join((number or "").split())[:256]
        digest = hmac.new(self._secret, number.encode("utf-8", "replace"), hashlib.sha256)
        digits = "".join(ch for ch in number if ch.isascii() and ch.isdigit())
        return SenderKey(digest.hexdigest(), digits[-4:])

    @property
    def key_id(self) -> str:
        """Fingerprint of the secret, kept in the database to catch a changed secret."""
        return hmac.new(self._secret, b"calfline key id", hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Inbound:
    """One message as received; dedupe_key comes from idempotency_key()."""

    channel: str
    sender: str
    our_number: str
    body: str
    twilio_sid: str | None = None
    dedupe_key: str | None = None


@dataclass(frozen=True)
class StoredReply:
    """The reply recorded for an inbound message; duplicate means a re-sent webhook."""

    text: str
    template_id: str
    conversation_id: int
    intent: str | None = None
    duplicate: bool = False


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


class ConversationStore:
    """Conversations and messages in one SQL database; safe across workers and threads."""

    def __init__(self, engine: Engine, hasher: SenderHasher) -> None:
        self.engine = engine
        self.hasher = hasher

    @classmethod
    def open(cls, url: str, hash_secret: str) -> ConversationStore:
        """Connect, migrate to the newest schema, and check the hash secret matches."""
        engine = open_engine(url)
        store = cls(engine, SenderHasher(hash_secret))
        try:
            migrate(engine)
            store._check_hash_key()
        finally:
            engine.dispose()  # no connection crosses a worker fork (gunicorn --preload)
        return store

    def _check_hash_key(self) -> None:
        key_id = self.hasher.key_id
        with Session(self.engine) as session, session.begin():
            row = session.get(Meta, HASH_KEY_ID)
            if row is None:
                try:
                    with session.begin_nested():
                        session.add(Meta(key=HASH_KEY_ID, value=key_id))
                except IntegrityError:
                    row = session.get(Meta, HASH_KEY_ID, populate_existing=True)
            if row is not None and row.value != key_id:
                # A new secret would silently "forget" every opt-out: refuse instead.
                raise ConfigError(
                    "CALFLINE_HASH_SECRET differs from the secret this database was written "
                    "with; opt-outs would no longer match. Restore the old secret."
                )

    def ping(self) -> None:
        """Round-trip to the database; raise if it does not answer."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def close(self) -> None:
        """Close pooled connections (before a fork, or at shutdown)."""
        self.engine.dispose()

    def _find(self, session: Session, key: SenderKey, our_number: str) -> Conversation | None:
        stmt = select(Conversation).where(Conversation.sender_hash == key.hash,
                                          Conversation.our_number == our_number)
        return session.scalars(stmt.with_for_update()).first()

    def state(self, sender: str, our_number: str) -> ConversationState:
        """Return the opt-out status and context of a sender on one of our numbers."""
        key, number = self.hasher.key(sender), short_text(our_number, 64)
        with Session(self.engine) as session, session.begin():
            row = self._find(session, key, number)
            if row is None:
                return ConversationState()
            clarify = (row.clarify_first, row.clarify_second)
            return ConversationState(
                opted_out=row.opted_out,
                last_intent=row.last_intent,
                clarify=clarify if clarify[0] and clarify[1] else None,  # type: ignore[arg-type]
                context_at=row.context_at,
            )

    def find_reply(self, dedupe_key: str) -> StoredReply | None:
        """Return the reply already recorded for a webhook, if it was seen before."""
        with Session(self.engine) as session, session.begin():
            return self._reply_for(session, dedupe_key)

    def _reply_for(self, session: Session, dedupe_key: str) -> StoredReply | None:
        reply = aliased(Message)
        stmt = (select(reply).join(Message, reply.reply_to_id == Message.id)
                .where(Message.dedupe_key == dedupe_key))
        row = session.scalars(stmt).first()
        if row is None:
            return None
        return StoredReply(row.body, row.template_id or "", row.conversation_id, row.intent,
                           duplicate=True)

    def _conversation(self, session: Session, key: SenderKey, number: str,
                      now: datetime) -> Conversation:
        row = self._find(session, key, number)
        if row is not None:
            return row
        try:
            with session.begin_nested():
                row = Conversation(sender_hash=key.hash, sender_last4=key.last4,
                                   our_number=number, created_at=now, updated_at=now,
                                   opted_out=False)
                session.add(row)
        except IntegrityError:  # another worker created it a moment ago
            row = self._find(session, key, number)
            assert row is not None
        return row

    def record(self, inbound: Inbound, turn: Turn, now: datetime | None = None) -> StoredReply:
        """Store a message, its reply and the new state atomically; a re-sent webhook
        (same dedupe key, even concurrently) gets the first copy's reply instead."""
        now = now or utcnow()
        key, number = self.hasher.key(inbound.sender), short_text(inbound.our_number, 64)
        with Session(self.engine) as session, session.begin():
            conv = self._conversation(session, key, number, now)  # row locked until commit
            message = Message(
                conversation_id=conv.id, direction="in", channel=short_text(inbound.channel, 8),
                created_at=now, body=clean_text(inbound.body)[:MAX_MESSAGE_CHARS],
                intent=turn.match.intent, confidence=turn.match.confidence,
                twilio_sid=short_text(inbound.twilio_sid, 64) or None,
                dedupe_key=inbound.dedupe_key,
            )
            try:
                with session.begin_nested():
                    session.add(message)
            except IntegrityError:
                stored = self._reply_for(session, inbound.dedupe_key or "")
                if stored is None:
                    raise
                return stored
            text_, template = turn.reply.text, turn.reply.template_id
            if conv.opted_out and turn.opt_change is not False:
                # Opted out meanwhile (a STOP on another worker): send nothing, keep state.
                text_, template = "", SILENT_TEMPLATE
            else:
                self._apply(conv, turn, now)
            conv.updated_at = now
            session.flush()  # gives the inbound row its id
            session.add(Message(
                conversation_id=conv.id, direction="out", channel=message.channel,
                created_at=now, body=text_, intent=turn.match.intent, template_id=template,
                reply_to_id=message.id,
            ))
            return StoredReply(text_, template, conv.id, turn.match.intent)

    @staticmethod
    def _apply(conv: Conversation, turn: Turn, now: datetime) -> None:
        state = turn.state
        conv.last_intent = state.last_intent
        conv.clarify_first, conv.clarify_second = state.clarify or (None, None)
        conv.context_at = state.context_at
        if turn.opt_change is not None:
            conv.opted_out = turn.opt_change
            conv.opted_out_at = now if turn.opt_change else None

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
                                   secret)
    app.extensions[EXTENSION] = store
    return store
