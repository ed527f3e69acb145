"""Bound a webhook's database work in time, and stop calling a database that is down.

    guard = StoreGuard(engine, timeout=1.0)
    guard.run(work)      # work()'s result, or StoreUnavailable within `timeout` seconds
    guard.attempt(work)  # the same even while the circuit is open (probes, replay)
    guard.available      # False from the first failure until a probe succeeds

Why a thread: psycopg has no client-side timeout for a query (connect_timeout
covers only connecting, statement_timeout is enforced by the server), so a
frozen server or network keeps the caller waiting for ever. The work runs on
a small pool instead and the webhook waits at most `timeout`; work it stops
waiting for is abandoned: its PostgreSQL socket is shut down (the blocked
read fails at once and SQLAlchemy drops the connection), a SQLite connection
is interrupted, and a connection, transaction or commit it has not begun yet is
refused (`raise_if_abandoned`, called from the engine's connect, begin and commit
events).

Why not always: with `inline` set, `run` does the work in the caller's own thread
and saves the hop to the pool and back (two thread wake-ups and GIL hand-overs per
webhook, each queued behind the other busy threads for a core under load: 11% of
a PostgreSQL webhook's worker CPU under bench/webhook_load.py). The deadline then
holds without the pool:
- On SQLite by itself: the writer queue gives up at it (database.WriterQueue),
  SQLite's busy wait is set to what is left before BEGIN IMMEDIATE, a statement
  still running at it is interrupted by the progress handler (`past_deadline`),
  and a begin or commit after it is refused. What no thread can cut is a system
  call stuck on a disk that stopped answering (an fsync); the pool leaves the
  webhook free to answer from the spool, so the web app sets `inline` for a SQLite
  file only when the spool shares its file system (responder/channels/fallback.py),
  where that answer would wait on the same disk.
- On PostgreSQL by a watchdog thread (store/watchdog.py), which abandons the work
  at its deadline as the pool's waiter would: the socket is shut down and the
  blocked read fails at once. What it cannot cut is a connection attempt, which
  libpq ends at connect_timeout (2 s at least, database.py), still inside the
  webhook's budget.
`attempt` (the probes, the replay, /readyz) always uses the pool.

A circuit breaker stops the webhooks from each paying that wait: after one
failure `run` refuses at once until `attempt` succeeds (the spool replayer
probes about once a second). One outage, two log lines: a warning when the
circuit first opens, and one with the counts (calls refused, relapses) once it
has stayed closed for SETTLE_SECONDS; a full disk that lets a few writes through
is one outage, not a line a second.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy import exc as sa_exc

from responder.errors import StoreUnavailable
from responder.store.watchdog import Watchdog

log = logging.getLogger("calfline.store")
T = TypeVar("T")
# Threads per process for store work: a gthread worker runs 4 requests at once, and a
# few abandoned calls may still be unwinding.
POOL_THREADS = 8
# Errors that say the database cannot take the work now (down, unreachable, read-only,
# full, too slow), as opposed to a bug: those open the circuit.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,  # refused, dropped, disk full, read-only file, statement_timeout
    sa_exc.InterfaceError,
    sa_exc.InternalError,  # PostgreSQL: read-only transaction (a replica after fail-over)
    sa_exc.TimeoutError,  # no pooled connection free in time
    sa_exc.DisconnectionError,
    sqlite3.OperationalError,
    OSError,
    StoreUnavailable,
)

# An outage ends (one "back" line) when the database has worked for this long.
SETTLE_SECONDS = 3.0
_current = threading.local()


class _Outage:
    """One outage as the log tells it: from the first failure to a settled recovery."""

    def __init__(self, began: float) -> None:
        self.began = began
        self.closed_at: float | None = None
        self.refused = 0
        self.relapses = 0
_SERVER_ADDRESS = re.compile(r'connection to server (?:at|on socket) "[^"]*"(?:, port \d+)?')


class _Work:
    """One piece of store work: its deadline and the connections it holds (on the pool)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.abandoned = False
        self.connections: list[Any] = []

    def abandon(self) -> None:
        """Stop waiting for this work: cut what it is blocked on, refuse its commit."""
        self.abandoned = True
        for connection in list(self.connections):
            _interrupt(connection)


def _interrupt(dbapi_connection: Any) -> None:
    """Wake a thread blocked on this DBAPI connection (best effort, from another thread)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.interrupt()
        return
    pgconn = getattr(dbapi_connection, "pgconn", None)  # psycopg 3
    fd = getattr(pgconn, "socket", -1) if pgconn is not None else -1
    if fd < 0:
        return
    try:
        # shutdown() acts on the socket, not on this duplicate descriptor: the read
        # psycopg is blocked in sees end-of-file and the query fails at once.
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


@contextmanager
def watched(dbapi_connection: Any) -> Iterator[None]:
    """Let the current work's abandon() interrupt a connection it did not check out
    itself (spare_connection.py keeps one between webhooks); outside any work, nothing."""
    work: _Work | None = getattr(_current, "work", None)
    if work is None or dbapi_connection in work.connections:
        yield
        return
    work.connections.append(dbapi_connection)
    try:
        yield
    finally:
        if dbapi_connection in work.connections:
            work.connections.remove(dbapi_connection)


def raise_if_abandoned() -> None:
    """Refuse to begin or commit a transaction the webhook has stopped waiting for, or
    one past its deadline (inline work, which nobody abandons from outside)."""
    if past_deadline():
        raise StoreUnavailable("the webhook stopped waiting for this database work")


def past_deadline() -> bool:
    """True once the current store work is abandoned or past its deadline: SQLite's
    progress handler (database.py) then interrupts the statement running."""
    work: _Work | None = getattr(_current, "work", None)
    return work is not None and (work.abandoned or time.monotonic() >= work.deadline)


def remaining() -> float | None:
    """Seconds left for the current store work, or None outside the guard (no limit)."""
    work: _Work | None = getattr(_current, "work", None)
    if work is None:
        return None
    return work.deadline - time.monotonic()


def watch_engine(engine: Engine) -> None:
    """Let the guard interrupt this engine's connections and refuse abandoned commits."""

    @event.listens_for(engine, "checkout", insert=True)  # before the ping (database.py)
    def _checked_out(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        work: _Work | None = getattr(_current, "work", None)
        if work is not None:
            work.connections.append(dbapi_connection)

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, _record: Any) -> None:
        work: _Work | None = getattr(_current, "work", None)
        if work is not None and dbapi_connection in work.connections:
            work.connections.remove(dbapi_connection)

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, _args: Any, _kwargs: Any) -> None:
        raise_if_abandoned()  # nor a new connection after its ping was cut

    @event.listens_for(engine, "begin", insert=True)  # before SQLite's BEGIN IMMEDIATE
    def _begin(_connection: Any) -> None:
        raise_if_abandoned()

    @event.listens_for(engine, "commit")
    def _commit(_connection: Any) -> None:
        raise_if_abandoned()


def describe(error: BaseException) -> str:
    """A short reason for logs and /readyz: the error type and its first line, no URL."""
    if isinstance(error, sa_exc.DBAPIError) and error.orig is not None:
        error = error.orig
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    # libpq names the host and port; where the database lives stays out of logs and /readyz.
    first = _SERVER_ADDRESS.sub("connection to server", first)
    return f"{type(error).__name__}: {first[:160]}" if first else type(error).__name__


class StoreGuard:
    """A time limit for each piece of store work and a circuit breaker around the database."""

    def __init__(self, engine: Engine, timeout: float, name: str = "database") -> None:
        self.engine = engine
        self.timeout = timeout
        self.name = name
        # run() in the caller's thread (see the module docstring).
        self.inline = False
        # Inline work on a server database is cut at its deadline by a watchdog thread;
        # SQLite's waits end by themselves.
        self._watchdog = Watchdog() if engine.dialect.name != "sqlite" else None
        self._lock = threading.Lock()
        self._pool: tuple[int, ThreadPoolExecutor] | None = None  # (pid, pool): never forked
        self._down_since: float | None = None  # monotonic; the circuit is open
        self._reason = ""
        self._outage: _Outage | None = None  # logged as begun, not yet as over
        watch_engine(engine)

    @property
    def available(self) -> bool:
        """False from a failure until a probe (attempt) succeeds."""
        return self._down_since is None

    @property
    def cuts_inline_work(self) -> bool:
        """True if inline work is cut at its deadline by this guard's watchdog (a database
        server); a SQLite file's waits end by themselves instead."""
        return self._watchdog is not None

    @property
    def reason(self) -> str:
        """Why the circuit is open ("" while it is closed)."""
        return self._reason

    def down_for(self) -> float:
        """Seconds since the circuit opened (0 while closed)."""
        since = self._down_since
        return 0.0 if since is None else time.monotonic() - since

    def run(self, work: Callable[[], T], timeout: float | None = None) -> T:
        """Return work()'s result within the time limit; raise StoreUnavailable otherwise.

        While the circuit is open this refuses at once, without touching the database.
        """
        if self._down_since is not None:
            outage = self._outage
            if outage is not None:
                outage.refused += 1  # a gauge for the log line; a lost increment is harmless
            raise StoreUnavailable(self._reason)
        if self._outage is not None:
            self.settle()
        try:
            return self._call(work, timeout, inline=self.inline)
        except StoreUnavailable as exc:
            self.trip(str(exc))
            raise

    def attempt(self, work: Callable[[], T], timeout: float | None = None) -> T:
        """Like run(), also while the circuit is open; success closes it."""
        try:
            result = self._call(work, timeout)
        except StoreUnavailable as exc:
            self.trip(str(exc))
            raise
        self.reset()
        return result

    def trip(self, reason: str) -> None:
        """Open the circuit and drop the pooled connections; log if an outage begins.

        A pooled connection may be what failed: SQLite opens a file it cannot write
        read-only and stays so, a PostgreSQL socket may be dead. The next attempt
        opens fresh ones. A failure within SETTLE_SECONDS of the last recovery (a
        full disk lets some writes through) is the same outage: no second warning.
        """
        self.engine.dispose()
        now = time.monotonic()
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since, self._reason = now, reason
            if self._outage is not None:
                self._outage.relapses += 1
                return
            self._outage = _Outage(now)
        log.warning("%s unavailable: answering without it until it is back", self.name,
                    extra={"dependency": self.name, "error": reason})

    def reset(self) -> None:
        """Close the circuit; settle() logs the outage over once it stays closed."""
        with self._lock:
            if self._down_since is None:
                return
            self._down_since, self._reason = None, ""
            if self._outage is not None:
                self._outage.closed_at = time.monotonic()
        self.settle()

    def settle(self) -> None:
        """Log the end of an outage (how long, what was refused) once the circuit has
        stayed closed for SETTLE_SECONDS; the spool replayer calls this every second."""
        now = time.monotonic()
        with self._lock:
            outage = self._outage
            if (outage is None or self._down_since is not None or outage.closed_at is None
                    or now - outage.closed_at < SETTLE_SECONDS):
                return
            self._outage = None
        log.warning("%s back", self.name, extra={
            "dependency": self.name, "down_seconds": round(outage.closed_at - outage.began, 3),
            "calls_refused": outage.refused, "relapses": outage.relapses})

    def _executor(self) -> ThreadPoolExecutor:
        pid = os.getpid()
        pool = self._pool
        if pool is None or pool[0] != pid:
            with self._lock:
                pool = self._pool
                if pool is None or pool[0] != pid:  # a forked worker makes its own threads
                    pool = (pid, ThreadPoolExecutor(POOL_THREADS, "calfline-store"))
                    self._pool = pool
        return pool[1]

    def _call(self, work: Callable[[], T], timeout: float | None, inline: bool = False) -> T:
        limit = self.timeout if timeout is None else min(timeout, self.timeout)
        if limit <= 0:
            raise StoreUnavailable("no time left in the webhook's budget")
        job = _Work(time.monotonic() + limit)
        if inline:
            return self._call_inline(work, job)

        def run_job() -> T:
            if job.abandoned:  # waited in the queue past its deadline
                raise StoreUnavailable("abandoned before it started")
            _current.work = job
            try:
                return work()
            finally:
                _current.work = None

        future: Future[T] = self._executor().submit(run_job)
        try:
            return future.result(timeout=limit)
        except FutureTimeout:
            job.abandon()
            future.cancel()
            raise StoreUnavailable(f"no answer within {limit:g} s") from None
        except UNAVAILABLE as exc:
            raise StoreUnavailable(describe(exc)) from exc

    def _call_inline(self, work: Callable[[], T], job: _Work) -> T:
        """work() in this thread; its waits end at the job's deadline (module docstring)."""
        outer, _current.work = getattr(_current, "work", None), job
        if self._watchdog is not None:
            self._watchdog.watch(job)
        try:
            return work()
        except UNAVAILABLE as exc:  # "interrupted" or a cut socket at the deadline among them
            raise StoreUnavailable(describe(exc)) from exc
        finally:
            if self._watchdog is not None:
                self._watchdog.release(job)
            _current.work = outer

    def shutdown(self) -> None:
        """Stop this process's pool threads (tests, shutdown)."""
        pool, self._pool = self._pool, None
        if pool is not None and pool[0] == os.getpid():
            pool[1].shutdown(wait=False, cancel_futures=True)
        if self._watchdog is not None:
            self._watchdog.stop()
