"""Record what the line answered during an outage, once the database is back.

A thread per web process (started by its first request, like the escalation
worker) runs tick() about once a second:

- while the store's circuit is open, probe the database with a real write
  (`write_probe`); a success closes the circuit (responder/store/guard.py);
- while turns wait in the spool, replay them in order (one process at a time):
  each is recorded once (its dedupe key) and its clinic alert queued once (the
  outbox's unique key); the database failing again stops the replay, and the
  next round starts the batch over; a turn the database refuses for good is set
  aside in turns.failed.jsonl with an error in the log;
- refresh the local opt-out copy from the database about once a minute;
- log the spool gauge (turns waiting) every 10 s while any wait, and once more
  when the last one is recorded.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from functools import partial

from flask import Flask

from responder.channels.call_record import escalation_inbound
from responder.channels.fallback import EXTENSION, Fallback
from responder.errors import StoreUnavailable
from responder.frontdesk.escalation import queue_escalation
from responder.store.conversation_store import ConversationStore
from responder.store.guard import describe
from responder.store.turns import SpooledTurn

log = logging.getLogger("calfline.spool")
TICK_SECONDS = 1.0
OPTOUT_REFRESH_SECONDS = 60.0
GAUGE_SECONDS = 10.0
# Each replayed turn is one small transaction: as long as a webhook's.
REPLAY_TIMEOUT_SECONDS = 2.0


@dataclass
class ReplayCount:
    """What one replay did."""

    recorded: int = 0
    duplicates: int = 0
    set_aside: int = 0
    stopped: bool = False  # the database failed again; the rest waits for the next round


def _replay_one(app: Flask, store: ConversationStore, turn: SpooledTurn) -> bool:
    """Record one spooled turn and queue its alert; True if it was recorded before."""
    reply = store.replay(turn)
    inbound = turn.inbound
    if inbound.channel == "voice":
        inbound = escalation_inbound(inbound, reply.intent)
    # Queued also when the record was already there: the webhook may have recorded it
    # and failed before the outbox row; the outbox's unique key stops a second alert.
    queue_escalation(app, inbound, replace(reply, duplicate=False))
    return reply.duplicate


def replay_spool(app: Flask) -> ReplayCount:
    """Record every spooled turn this process can claim; see the module docstring.

    Raises StoreUnavailable when the database fails again: the batch stays for the
    next round (its turns already recorded are then found by their dedupe keys).
    """
    store: ConversationStore = app.extensions["calfline_store"]
    fallback: Fallback = app.extensions[EXTENSION]
    count = ReplayCount()
    with fallback.spool.replaying() as batch:
        if batch is None:
            return count
        for turn in batch:
            try:
                duplicate = store.guard.attempt(partial(_replay_one, app, store, turn),
                                                REPLAY_TIMEOUT_SECONDS)
            except StoreUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad turn must not block the rest
                batch.quarantine(turn, describe(exc))
                count.set_aside += 1
                continue
            if duplicate:
                count.duplicates += 1
            else:
                count.recorded += 1
    return count


def replay(app: Flask) -> ReplayCount:
    """replay_spool(), logging what it did; a database failure is logged, not raised."""
    try:
        count = replay_spool(app)
    except StoreUnavailable:
        log.warning("spool replay stopped: the database failed again; retrying")
        return ReplayCount(stopped=True)
    if count.recorded or count.duplicates or count.set_aside:
        pending = app.extensions[EXTENSION].spool.pending()
        log.warning("spool replayed", extra={
            "recorded": count.recorded, "duplicates": count.duplicates,
            "set_aside": count.set_aside, "spool_pending": pending})
    return count


class Replayer:
    """One round of probing, replaying and refreshing; run by a thread every second."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._gauge_at = 0.0
        self._last_pending = 0

    def tick(self) -> None:
        """Probe, replay, refresh the opt-out copy, log the gauge."""
        app = self.app
        store: ConversationStore = app.extensions["calfline_store"]
        fallback: Fallback = app.extensions[EXTENSION]
        if not store.guard.available:
            try:
                store.guard.attempt(store.write_probe, REPLAY_TIMEOUT_SECONDS)
            except StoreUnavailable:
                pass  # still down; the guard logged the outage when it began
        store.guard.settle()  # "database back" once it has stayed back
        pending = fallback.spool.pending()
        if store.guard.available and pending:
            replay(app)
            pending = fallback.spool.pending()
        elif store.guard.available:
            age = fallback.optouts.age()
            if age is None or age > OPTOUT_REFRESH_SECONDS:
                try:
                    fallback.optouts.replace(store.guard.attempt(store.opted_out_pairs))
                except StoreUnavailable:
                    pass
        self._gauge(pending, store)

    def _gauge(self, pending: int, store: ConversationStore) -> None:
        now = time.monotonic()
        if pending and (now >= self._gauge_at or not self._last_pending):
            log.warning("spool", extra={"spool_pending": pending,
                                        "database": "up" if store.guard.available else "down"})
            self._gauge_at = now + GAUGE_SECONDS
        elif not pending and self._last_pending:
            log.warning("spool", extra={"spool_pending": 0, "database": "up"})
        self._last_pending = pending

    def run(self, stop: threading.Event) -> None:
        """tick() every second until `stop` is set; an unexpected error is logged, not fatal."""
        failing = False
        while not stop.wait(TICK_SECONDS):
            try:
                self.tick()
                failing = False
            except Exception:  # noqa: BLE001 - the replayer must outlive a bad round
                if not failing:
                    log.exception("spool replayer failed; retrying every second")
                failing = True


def install_replayer(app: Flask) -> None:
    """Start a replayer thread in each web process, by its first request (never in testing)."""
    app.extensions["calfline_replayer"] = Replayer(app)
    if app.testing:
        return  # tests call Replayer.tick() themselves
    started: dict[str, int] = {}
    lock = threading.Lock()

    def ensure_replayer() -> None:
        # Never in a preloading master: its thread would not survive the fork anyway.
        with lock:
            if started.get("pid") == os.getpid():
                return
            started["pid"] = os.getpid()
        replayer: Replayer = app.extensions["calfline_replayer"]
        threading.Thread(target=replayer.run, args=(threading.Event(),),
                         name="calfline-spool", daemon=True).start()

    app.before_request(ensure_replayer)
