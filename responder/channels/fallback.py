"""Answer first, record safely: a webhook's reply never waits on, or dies with, the database.

A webhook's store work (the sender's context, the record, a clinic alert in the
outbox) runs under the store's guard (responder/store/guard.py), within the
webhook's time budget (CALFLINE_WEBHOOK_BUDGET, at most CALFLINE_STORE_TIMEOUT
for the database). When it fails or runs out of time, the line answers without
the database:

- a text is matched on its own, red flags first as always; "more", "1"/"2" and
  YES to the check question, whose context is in the database, get the answers
  that need none (answer_without_store);
- a call turn needs no database to be answered at all (the call's state is in
  its URL);
- an SMS sender's opt-out comes from the local copy of the list
  (responder/store/optout_copy.py), and a STOP or START is written to it at once;
- the turn goes to the spool (responder/store/spool.py), and replay.py records
  it, and queues its clinic alert, once the database is back.

Every turn has a dedupe key before the database sees it (Twilio's MessageSid,
CallSid and turn, or idempotency token; a random one otherwise), so a turn that
was recorded after all, just as the webhook gave up waiting, is not recorded twice.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from flask import Flask, current_app, g

from responder.channels.answer_and_record import answer_and_record, answer_without_store
from responder.channels.call_record import call_turn, escalation_inbound, record_turn
from responder.channels.flask_context import this_app
from responder.dialogue.call_flow import Step
from responder.dialogue.respond import Responder
from responder.errors import ConfigError, StoreUnavailable
from responder.frontdesk.escalation import queue_escalation
from responder.store.conversation_store import (
    ConversationStore,
    Inbound,
    StoredReply,
    idempotency_key,
    utcnow,
)
from responder.store.database import sqlite_file
from responder.store.optout_copy import OptOutCopy
from responder.store.spool import TurnSpool
from responder.store.turns import SpooledTurn, check_answer

log = logging.getLogger("calfline.fallback")
EXTENSION = "calfline_fallback"
# Seconds of the budget kept back for answering without the database (matching and an
# fsynced spool line take milliseconds; this is slack for a busy machine).
ANSWER_RESERVE = 0.5
# Twilio waits 15 s for the whole response (twilio.com/docs/errors/11205); keep a margin.
MAX_WEBHOOK_BUDGET = 14.0
T = TypeVar("T")


@dataclass
class Fallback:
    """What a webhook needs to answer without the database, per app."""

    spool: TurnSpool
    optouts: OptOutCopy
    budget: float


def check_time_limits(config: Mapping[str, Any]) -> None:
    """Refuse time limits that cannot hold: every wait must fit in the webhook budget."""
    budget = float(config["WEBHOOK_BUDGET"])
    store, redis = float(config["STORE_TIMEOUT"]), float(config["REDIS_TIMEOUT"])
    if not 0 < budget <= MAX_WEBHOOK_BUDGET:
        raise ConfigError(f"CALFLINE_WEBHOOK_BUDGET={budget:g}: must be above 0 and at most "
                          f"{MAX_WEBHOOK_BUDGET:g} seconds (Twilio gives up after 15)")
    if store <= 0 or redis <= 0:
        raise ConfigError("CALFLINE_STORE_TIMEOUT and CALFLINE_REDIS_TIMEOUT must be above 0")
    # A webhook may wait for Redis twice (the re-send check and the count), then the store.
    if store + 2 * redis + ANSWER_RESERVE > budget:
        raise ConfigError(
            f"CALFLINE_STORE_TIMEOUT ({store:g}) plus twice CALFLINE_REDIS_TIMEOUT ({redis:g}) "
            f"must leave {ANSWER_RESERVE:g} s of CALFLINE_WEBHOOK_BUDGET ({budget:g}) to answer")


def spool_directory(app: Flask) -> Path:
    """CALFLINE_SPOOL_DIR, or instance/spool."""
    return Path(app.config.get("SPOOL_DIR") or Path(app.instance_path) / "spool")


def install_fallback(app: Flask) -> Fallback:
    """Set up the spool and the opt-out copy, and start each request's time budget.

    create_app() has checked the time limits (check_time_limits) before the store opened.
    """
    directory = spool_directory(app)
    fallback = Fallback(TurnSpool(directory), OptOutCopy(directory / "optouts.json"),
                        float(app.config["WEBHOOK_BUDGET"]))
    app.extensions[EXTENSION] = fallback
    app.before_request(_start_budget)
    store: ConversationStore = app.extensions["calfline_store"]
    store.guard.inline = runs_inline(store, directory)
    try:  # a copy as fresh as the database, for an outage that starts right away
        fallback.optouts.replace(store.guard.attempt(store.opted_out_pairs))
    except StoreUnavailable:
        log.warning("opt-out copy not refreshed at start-up; keeping the last one")
    finally:
        store.engine.dispose()  # no pooled connection may cross a worker fork (--preload)
    return fallback


def runs_inline(store: ConversationStore, spool: Path) -> bool:
    """Whether the guard runs a webhook's store work in the webhook's own thread
    (responder/store/guard.py) rather than on its pool.

    A database server (PostgreSQL): yes, its watchdog cuts a frozen server at the
    deadline. A SQLite file: only on the spool's file system, where a disk that
    stops answering would hold the spool's fsync as well, so the pool could not
    get that answer out any sooner.
    """
    if store.guard.cuts_inline_work:
        return True
    database = sqlite_file(store.engine)
    return database is not None and _device(database.parent) == _device(spool)


def _device(path: Path) -> int:
    """The file system holding `path`, or the one it will be made on (the spool makes
    its directory on first use, mode 0700)."""
    for candidate in (path, *path.resolve().parents):
        try:
            return os.stat(candidate).st_dev
        except FileNotFoundError:
            continue
    raise FileNotFoundError(path)


def _start_budget() -> None:
    g.calfline_deadline = time.monotonic() + current_app.extensions[EXTENSION].budget


def time_left() -> float:
    """Seconds left of this request's budget."""
    deadline = g.get("calfline_deadline")
    if deadline is None:
        return float(current_app.config["WEBHOOK_BUDGET"])
    return float(deadline - time.monotonic())


def with_dedupe_key(inbound: Inbound) -> Inbound:
    """The inbound with a dedupe key: Twilio's when it sent one, else a random one."""
    if inbound.dedupe_key:
        return inbound
    return replace(inbound, dedupe_key=idempotency_key("unkeyed", uuid.uuid4().hex))


def _guarded(store: ConversationStore, work: Callable[[], T], what: str) -> T | None:
    """work()'s result, or None when the database failed it (logged once per outage)."""
    try:
        return store.guard.run(work, timeout=time_left() - ANSWER_RESERVE)
    except StoreUnavailable:
        return None  # the guard logged the outage once
    except Exception:  # noqa: BLE001 - a bug in the store path must not silence the line
        log.exception("recording a %s failed; answered without the database", what)
        return None


def _keep(fallback: Fallback, turn: SpooledTurn) -> None:
    fallback.spool.append(turn)
    g.calfline_spool_pending = fallback.spool.pending()  # the gauge, on the request log line


def answer_text(inbound: Inbound, variables: Mapping[str, str],
                context_window: timedelta) -> StoredReply:
    """Answer a text and record it: in the database, or in the spool if it failed."""
    app = this_app()
    store: ConversationStore = app.extensions["calfline_store"]
    responder: Responder = app.extensions["calfline"]
    fallback: Fallback = app.extensions[EXTENSION]
    inbound, now = with_dedupe_key(inbound), utcnow()

    hold = timedelta(minutes=float(app.config["TAKEOVER_MINUTES"]))

    def work() -> StoredReply:
        reply, turn = answer_and_record(store, responder, inbound, variables, context_window,
                                        now, hold)
        # An outbox row (delivered in the background) and the clinic's inbox item.
        queue_escalation(app, inbound, reply, turn.match.reason)
        if not reply.duplicate and turn.opt_change is not None:
            sender = store.hasher.key(inbound.sender).hash
            fallback.optouts.change(sender, inbound.our_number[:64], turn.opt_change)
        return reply

    stored = _guarded(store, work, "text")
    if stored is not None:
        return stored
    sender = store.hasher.key(inbound.sender).hash
    turn = answer_without_store(responder, inbound, variables,
                                fallback.optouts.contains(sender, inbound.our_number[:64]), now)
    if turn.opt_change is not None:
        fallback.optouts.change(sender, inbound.our_number[:64], turn.opt_change)
    match, reply = turn.match, turn.reply
    _keep(fallback, SpooledTurn(inbound, now, match.intent, match.confidence, reply.text,
                                reply.template_id, turn.opt_change, store.database_id,
                                match.care, check_answer(match)))
    return StoredReply(reply.text, reply.template_id, 0, match.intent)


def record_call(inbound: Inbound, step: Step) -> StoredReply:
    """Record a call turn already answered: in the database, or in the spool if it failed."""
    app = this_app()
    store: ConversationStore = app.extensions["calfline_store"]
    inbound, now = with_dedupe_key(inbound), utcnow()

    def work() -> StoredReply:
        reply = record_turn(store, inbound, step, now)
        # An outbox row only, delivered in the background: the caller never waits.
        queue_escalation(app, escalation_inbound(inbound, reply.intent), reply,
                         step.match.reason if step.match else "")
        return reply

    stored = _guarded(store, work, "call turn")
    if stored is not None:
        return stored
    turn = call_turn(inbound, step)
    match = turn.match
    _keep(app.extensions[EXTENSION], SpooledTurn(
        inbound, now, match.intent, match.confidence, turn.reply.text, turn.reply.template_id,
        database=store.database_id, care=match.care, check_answer=check_answer(match)))
    return StoredReply(turn.reply.text, turn.reply.template_id, 0, match.intent)
