"""The webhook's SQL, built once per store: SQLAlchemy Core statements, no ORM objects.

Each inbound message costs one read (the sender's state) and one write
transaction of three statements (four when it changes the opt-out).
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

from sqlalchemy import Engine, Table, bindparam, case, select, update
from sqlalchemy.dialects import postgresql, sqlite

from responder.errors import ConfigError
from responder.store.models import Conversation, Message

CONVERSATIONS: Table = Conversation.__table__  # type: ignore[assignment]
MESSAGES: Table = Message.__table__  # type: ignore[assignment]
# The dialects whose INSERT has ON CONFLICT (and RETURNING), which idempotency relies on.
INSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
STATE_COLUMNS = ("opted_out", "last_intent", "clarify_first", "clarify_second", "context_at",
                 "language")
# Read with the state, never written by a webhook: who took the conversation over, and when.
HELD_COLUMNS = ("held_by", "held_at", "held_reply_at")


def supported_insert(engine: Engine) -> Any:
    """Return the dialect's INSERT construct; refuse a database without ON CONFLICT."""
    try:
        return INSERTS[engine.dialect.name]
    except KeyError:
        raise ConfigError(
            f"DATABASE_URL: the conversation store runs on SQLite or PostgreSQL, "
            f"not {engine.dialect.name}"
        ) from None


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
        upsert = insert(conv).values(
            sender_hash=bindparam("sender_hash"), sender_last4=bindparam("sender_last4"),
            our_number=bindparam("our_number"), created_at=bindparam("now"),
            updated_at=bindparam("now"), opted_out=False,
        )
        same_row = [conv.c.sender_hash, conv.c.our_number]
        self.touch_conversation = upsert.on_conflict_do_update(
            index_elements=same_row, set_={"updated_at": upsert.excluded.updated_at},
        ).returning(conv.c.id, conv.c.opted_out)
        # The same, saving a message's new context in that statement too, unless the
        # sender has opted out meanwhile (a STOP on another worker): one round trip less.
        with_state = insert(conv).values(
            **{name: bindparam(name) for name in STATE_COLUMNS[1:]},
            sender_hash=bindparam("sender_hash"), sender_last4=bindparam("sender_last4"),
            our_number=bindparam("our_number"), created_at=bindparam("now"),
            updated_at=bindparam("now"), opted_out=False,
        )
        kept_if_opted_out = {name: case((conv.c.opted_out, conv.c[name]),
                                        else_=with_state.excluded[name])
                             for name in STATE_COLUMNS[1:]}
        self.touch_conversation_with_state = with_state.on_conflict_do_update(
            index_elements=same_row,
            set_={"updated_at": with_state.excluded.updated_at, **kept_if_opted_out},
        ).returning(conv.c.id, conv.c.opted_out)
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
        replayed = insert(conv).values(
            sender_hash=bindparam("sender_hash"), sender_last4=bindparam("sender_last4"),
            our_number=bindparam("our_number"), created_at=bindparam("now"),
            updated_at=bindparam("now"), opted_out=False,
        )
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
        reply, inbound = msg.alias("reply"), msg.alias("inbound")
        self.reply_for = (
            select(reply.c.body, reply.c.template_id, reply.c.conversation_id, reply.c.intent)
            .join(inbound, reply.c.reply_to_id == inbound.c.id)
            .where(inbound.c.dedupe_key == bindparam("dedupe_key"))
        )
