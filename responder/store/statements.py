"""The webhook's SQL, built once per store: SQLAlchemy Core statements, no ORM objects.

Each inbound message costs one read (the sender's state) and one write
transaction of three statements (four when it changes the opt-out); on
PostgreSQL a message that leaves the opt-out alone is recorded by one
statement instead (record_in_one_statement).
Idempotency rests on the database's unique constraints, not on a prior
look-up: `INSERT ... ON CONFLICT DO NOTHING` on
`messages.dedupe_key` inserts a webhook's message exactly once, also when two
copies race on two workers (PostgreSQL makes the second wait for the first's
commit, SQLite's write lock serializes them), and the conversation row is an
upsert on (sender_hash, our_number). Both statements need a dialect that has
ON CONFLICT: SQLite (3.24+) and PostgreSQL (9.5+), the two the store supports.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Engine,
    Select,
    Table,
    bindparam,
    case,
    cast,
    exists,
    literal,
    null,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from responder.dialogue.conversation import SILENT_TEMPLATE
from responder.errors import ConfigError
from responder.store.driver_statement import DriverStatement
from responder.store.models import Conversation, Message, Meta

CONVERSATIONS: Table = Conversation.__table__  # type: ignore[assignment]
MESSAGES: Table = Message.__table__  # type: ignore[assignment]
META: Table = Meta.__table__  # type: ignore[assignment]
# The dialects whose INSERT has ON CONFLICT (and RETURNING), which idempotency relies on.
INSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
STATE_COLUMNS = ("opted_out", "last_intent", "clarify_first", "clarify_second", "context_at",
                 "language")
# Read with the state, never written by a webhook: who took the conversation over, and when.
HELD_COLUMNS = ("held_by", "held_at", "held_reply_at")
# What the store gives for an inbound message's row and for a reply's.
INBOUND_KEYS = ("conversation_id", "direction", "channel", "created_at", "body", "intent",
                "confidence", "template_id", "twilio_sid", "dedupe_key", "reply_to_id", "care",
                "check_answer", "language")
REPLY_KEYS = ("conversation_id", "direction", "channel", "created_at", "body", "intent",
              "confidence", "template_id", "twilio_sid", "dedupe_key", "reply_to_id", "language")

# What the store gives record_in_one_statement().
RECORD_IN_ONE_KEYS = ("sender_hash", "sender_last4", "our_number", "now", *STATE_COLUMNS[1:],
                      "channel", "body", "intent", "confidence", "twilio_sid", "dedupe_key",
                      "care", "check_answer", "message_language", "may_silence", "reply_body",
                      "template_id", "reply_language")


def supported_insert(engine: Engine) -> Any:
    """Return the dialect's INSERT construct; refuse a database without ON CONFLICT."""
    try:
        return INSERTS[engine.dialect.name]
    except KeyError:
        raise ConfigError(
            f"DATABASE_URL: the conversation store runs on SQLite or PostgreSQL, "
            f"not {engine.dialect.name}"
        ) from None


def new_conversation(insert: Any, with_context: bool = False) -> Any:
    """The INSERT of a sender's conversation row, with the message's context if asked."""
    names = STATE_COLUMNS[1:] if with_context else ()
    context: dict[str, Any] = {name: bindparam(name) for name in names}
    return insert(CONVERSATIONS).values(
        **context,
        sender_hash=bindparam("sender_hash"), sender_last4=bindparam("sender_last4"),
        our_number=bindparam("our_number"), created_at=bindparam("now"),
        updated_at=bindparam("now"), opted_out=False,
    )


def context_unless_opted_out(upsert: Any) -> dict[str, Any]:
    """On conflict, the new context, except for a sender who opted out meanwhile (a STOP
    on another worker): that row keeps what it had."""
    conv = CONVERSATIONS
    return {name: case((conv.c.opted_out, conv.c[name]), else_=upsert.excluded[name])
            for name in STATE_COLUMNS[1:]}


class StoreStatements:
    """Every statement one webhook runs, constructed once so only parameters change."""

    def __init__(self, engine: Engine) -> None:
        insert = supported_insert(engine)
        conv, msg = CONVERSATIONS, MESSAGES
        same_sender = ((conv.c.sender_hash == bindparam("sender_hash"))
                       & (conv.c.our_number == bindparam("our_number")))
        self.state = select(*(conv.c[name] for name in STATE_COLUMNS + HELD_COLUMNS)
                            ).where(same_sender)
        # Creates the conversation or takes its row lock, and reads the opt-out as of now.
        upsert = new_conversation(insert)
        same_row = [conv.c.sender_hash, conv.c.our_number]
        self.touch_conversation = upsert.on_conflict_do_update(
            index_elements=same_row, set_={"updated_at": upsert.excluded.updated_at},
        ).returning(conv.c.id, conv.c.opted_out)
        # The same, saving a message's new context in that statement too, unless the
        # sender has opted out meanwhile (a STOP on another worker): one round trip less.
        with_state = new_conversation(insert, with_context=True)
        kept_if_opted_out = context_unless_opted_out(with_state)
        self.touch_conversation_with_state = with_state.on_conflict_do_update(
            index_elements=same_row,
            set_={"updated_at": with_state.excluded.updated_at, **kept_if_opted_out},
        ).returning(conv.c.id, conv.c.opted_out)
        # The readiness probe's row, written whether or not it exists yet: an UPDATE and
        # then an INSERT raced when two workers probed a fresh database at once.
        probe = insert(META).values(key=bindparam("key"), value=bindparam("value"))
        self.write_probe = probe.on_conflict_do_update(
            index_elements=[META.c.key], set_={"value": probe.excluded.value})
        self.insert_inbound = insert(msg).on_conflict_do_nothing(
            index_elements=[msg.c.dedupe_key]).returning(msg.c.id)
        self.insert_reply = msg.insert()
        state: dict[str, Any] = {name: bindparam(name) for name in STATE_COLUMNS[1:]}
        self.save_state_and_opt_out = update(conv).where(
            conv.c.id == bindparam("conversation_id")).values(
            **state, opted_out=bindparam("opted_out"), opted_out_at=bindparam("opted_out_at"))
        # A turn replayed from the spool (responder/store/spool.py) happened earlier than
        # what the database may hold by now: it never moves updated_at back, never touches
        # the context, and changes the opt-out only if no later message has come in.
        replayed = new_conversation(insert)
        self.touch_conversation_replayed = replayed.on_conflict_do_update(
            index_elements=same_row,
            set_={"updated_at": case((conv.c.updated_at > replayed.excluded.updated_at,
                                      conv.c.updated_at), else_=replayed.excluded.updated_at)},
        ).returning(conv.c.id, conv.c.opted_out)
        self.later_inbound = select(msg.c.id).where(
            msg.c.conversation_id == bindparam("conversation_id"), msg.c.direction == "in",
            msg.c.created_at > bindparam("now")).limit(1)
        self.set_opt_out = update(conv).where(conv.c.id == bindparam("conversation_id")).values(
            opted_out=bindparam("opted_out"), opted_out_at=bindparam("opted_out_at"))
        # While taken over, the patient's number is kept so staff can reply to it.
        self.keep_held_number = update(conv).where(
            conv.c.id == bindparam("conversation_id"), conv.c.held_by.is_not(None)
        ).values(held_number=bindparam("held_number"))
        self.opted_out = select(conv.c.sender_hash, conv.c.our_number).where(conv.c.opted_out)
        # SQLite: the state read and an ordinary message's three statements on the
        # driver's cursor.
        self.driver: dict[str, DriverStatement] = {}
        if engine.dialect.name == "sqlite":
            self.driver = {
                "touch_with_state": DriverStatement(
                    self.touch_conversation_with_state, engine.dialect,
                    ("sender_hash", "sender_last4", "our_number", "now", *STATE_COLUMNS[1:])),
                "inbound": DriverStatement(self.insert_inbound, engine.dialect, INBOUND_KEYS),
                "reply": DriverStatement(self.insert_reply, engine.dialect, REPLY_KEYS),
                "state": DriverStatement(self.state, engine.dialect,
                                         ("sender_hash", "our_number")),
            }
        # PostgreSQL: an ordinary message's whole record as one statement (in autocommit);
        # it and the state read on the driver's cursor.
        self.record_in_one: Select[Any] | None = None
        if engine.dialect.name == "postgresql":
            self.record_in_one = record_in_one_statement()
            self.driver = {
                "state": DriverStatement(self.state, engine.dialect,
                                         ("sender_hash", "our_number")),
                "record_in_one": DriverStatement(self.record_in_one, engine.dialect,
                                                 RECORD_IN_ONE_KEYS),
            }
        reply, inbound = msg.alias("reply"), msg.alias("inbound")
        self.reply_for = (
            select(reply.c.body, reply.c.template_id, reply.c.conversation_id, reply.c.intent)
            .join(inbound, reply.c.reply_to_id == inbound.c.id)
            .where(inbound.c.dedupe_key == bindparam("dedupe_key"))
        )


def _typed(name: str, column: str, table: Table = MESSAGES) -> Any:
    """A parameter with its column's type (an INSERT ... SELECT gives it none)."""
    return bindparam(name, type_=table.c[column].type)


def record_in_one_statement() -> Select[Any]:
    """PostgreSQL: the conversation upsert (with the new context), the inbound message
    and its reply as data-modifying CTEs of one statement: one round trip in
    autocommit, where the three-statement transaction takes five (BEGIN, COMMIT).

    It returns the reply's (conversation_id, body, template_id), or no row for a
    re-sent webhook: its dedupe key is taken, so the inbound insert does nothing
    and neither does the reply. Such a copy must not save its context either (the
    transaction path rolls it back): the upsert leaves an existing row alone when a
    message with this dedupe key is already committed. Two copies in flight at once
    both see none; the second waits on the conversation row, saves the context it
    decided from the same state, and inserts no message. A sender opted out
    meanwhile (a STOP on another worker) keeps the context, and `may_silence`
    (an SMS) makes the reply the silent one. Messages that change the opt-out
    take the transaction path (one statement cannot update the row twice). A
    dedupe key reused by another sender leaves that sender an empty conversation
    row (nothing rolls it back), which `calfline purge` removes like any idle one.
    """
    conv, msg = CONVERSATIONS, MESSAGES
    upsert = new_conversation(postgresql.insert, with_context=True)
    kept_if_opted_out = context_unless_opted_out(upsert)
    recorded = exists().where(msg.c.dedupe_key == _typed("dedupe_key", "dedupe_key"))
    conversation = upsert.on_conflict_do_update(
        index_elements=[conv.c.sender_hash, conv.c.our_number],
        set_={"updated_at": upsert.excluded.updated_at, **kept_if_opted_out},
        where=~recorded,
    ).returning(conv.c.id, conv.c.opted_out).cte("conversation")
    inbound_columns = ("conversation_id", "direction", "channel", "created_at", "body",
                       "intent", "confidence", "twilio_sid", "dedupe_key", "care",
                       "check_answer", "language")
    inbound = postgresql.insert(msg).from_select(inbound_columns, select(
        conversation.c.id, literal("in", msg.c.direction.type), _typed("channel", "channel"),
        _typed("now", "created_at"), _typed("body", "body"), _typed("intent", "intent"),
        _typed("confidence", "confidence"), _typed("twilio_sid", "twilio_sid"),
        _typed("dedupe_key", "dedupe_key"), _typed("care", "care"),
        _typed("check_answer", "check_answer"), _typed("message_language", "language"),
    )).on_conflict_do_nothing(index_elements=[msg.c.dedupe_key]).returning(
        msg.c.id, msg.c.conversation_id).cte("inbound")
    silenced = conversation.c.opted_out & bindparam("may_silence", type_=conv.c.opted_out.type)
    reply_columns = ("conversation_id", "direction", "channel", "created_at", "body", "intent",
                     "confidence", "template_id", "reply_to_id", "language")
    reply = msg.insert().from_select(reply_columns, select(
        inbound.c.conversation_id, literal("out", msg.c.direction.type),
        _typed("channel", "channel"), _typed("now", "created_at"),
        case((silenced, literal("", msg.c.body.type)), else_=_typed("reply_body", "body")),
        _typed("intent", "intent"), cast(null(), msg.c.confidence.type),
        case((silenced, literal(SILENT_TEMPLATE, msg.c.template_id.type)),
             else_=_typed("template_id", "template_id")),
        inbound.c.id, _typed("reply_language", "language"),
    ).select_from(inbound.join(conversation, true()))).returning(
        msg.c.conversation_id, msg.c.body, msg.c.template_id).cte("reply")
    return select(reply.c.conversation_id, reply.c.body, reply.c.template_id)
