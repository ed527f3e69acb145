"""Open the database from a URL and bring its schema up to date (Alembic, at start-up).

A SQLite or PostgreSQL URL (the store needs ON CONFLICT, responder/store/statements.py);
the default is a SQLite file in Flask's instance folder. PostgreSQL goes
through psycopg 3 (`postgresql+psycopg://`). Several workers may start at
once: migrations run under a lock (an advisory lock on PostgreSQL, SQLite's
write lock) so exactly one of them upgrades.

SQLite durability: the file is in WAL mode (readers never wait for the
writer). Connections keep SQLite's default `synchronous=FULL`: every commit
is fsynced, so the escalation outbox, console and purge lose nothing even in
a power cut. The webhook's own transaction for an ordinary message commits
with `synchronous=NORMAL` instead (relaxed_commit): written to the operating
system but not fsynced, so a crashed or killed process loses nothing, while
a power cut or kernel crash can lose the last such messages (never corrupt
the file; sqlite.org/pragma.html#pragma_synchronous, sqlite.org/wal.html).
A message that changes the opt-out list commits the same way and is then
synced before the webhook answers (harden(): the WAL's fdatasync, outside every
lock, so no other worker waits for the disk), which hardens every relaxed commit
before it. A connection stays at NORMAL after a relaxed
commit (setting it and back cost two statements per message), and every other
write transaction's BEGIN puts it back to FULL first (_on_begin), so nothing
else ever commits relaxed. PostgreSQL makes the same split: the web app's
connections default to synchronous_commit=off, which only the webhook's
one-statement record (outside any transaction) keeps: it returns without
waiting for the WAL's flush, and a crash of the server or the machine can lose
the last such records (at most three wal_writer_delay, 0.6 s by default; never
a corrupt database). Every transaction SQLAlchemy begins (an opt-out change, the
outbox, the console, purge, migrations) sets synchronous_commit=on for itself
first (_durable_transactions), and its flush hardens every commit before it.

Time limits (`open_engine(url, timeout)`, the web app passes its webhook budget): a
PostgreSQL connection attempt gives up after connect_timeout, a statement after the
server's statement_timeout, a pooled connection is waited for at most `timeout`, and
dead peers are found by TCP keepalives and tcp_user_timeout. A SQLite writer waits
for another's lock at most `timeout` (busy_timeout, and WriterQueue within the
store work's own limit). None of these catches a server that accepts bytes and never
answers; responder/store/guard.py does. Inside the guard's work a SQLite connection
also keeps to the work's deadline by itself, for the webhooks the guard runs in their
own thread (a SQLite file beside its spool): its busy wait is cut to what is left
before BEGIN IMMEDIATE, and a progress handler interrupts a statement still running
at the deadline.
"""

from __future__ import annotations

import fcntl
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from types import TracebackType
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.pool import StaticPool

from responder.errors import ConfigError, StoreUnavailable
from responder.store.checkpointer import FALLBACK_PAGES
from responder.store.guard import past_deadline, raise_if_abandoned, remaining

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DEFAULT_SQLITE_NAME = "calfline.sqlite3"
# pg_advisory_xact_lock key: any constant that no other program on the database uses.
MIGRATION_LOCK_KEY = 0x0CA1F11E
# Seconds a SQLite writer waits for another process's write lock before giving up,
# when open_engine() is given no timeout (the command line; the web app passes its own).
SQLITE_BUSY_SECONDS = 30
# libpq waits at least 2 s for a connection whatever connect_timeout says.
PG_MIN_CONNECT_SECONDS = 2
PG_PEER_SECONDS = 5
# Page cache per SQLite connection, in KiB (negative: KiB, not pages); the pool keeps
# up to a few connections per worker, so this stays well inside the memory budget.
SQLITE_CACHE_KIB = 8192
# A pooled PostgreSQL connection idle this long is pinged before use (_ping_on_checkout).
PING_AFTER_IDLE_SECONDS = 1.0
RETURNED_AT = "calfline_returned_at"
# Execution option that leaves out SQLite's BEGIN IMMEDIATE for a single read: see reading().
READ_ONLY = "calfline_read_only"
# A SQLite connection's PRAGMA synchronous when not FULL, in its pool record's info; and
# the mark relaxed_commit() puts there for the transaction it lets skip the fsync.
SYNCHRONOUS = "calfline_synchronous"
RELAXED = "calfline_relaxed"
# SQLite virtual-machine instructions between two deadline checks (one Python call
# each): a runaway statement is cut within microseconds of the deadline.
PROGRESS_STEPS = 1000
# BEGIN IMMEDIATE's busy wait inside the guard is what is left of the work's time,
# rounded down to this many milliseconds (so it never outlasts the deadline).
BUSY_STEP_MS = 50
# How long a SQLite writer sleeps between tries for another process's writer lock,
# at first and at most (seconds): see WriterQueue.
FLOCK_FIRST_SLEEP = 0.00003
FLOCK_SLEEP_GROWTH = 1.3  # each sleep this much longer than the last
FLOCK_LONGEST_SLEEP = 0.002
BUSY_MS = "calfline_busy_ms"  # the connection's busy_timeout when not the default
BUSY_DEFAULT_MS = "calfline_busy_default_ms"  # and its default, set when it connects


def database_url(configured: str, instance_path: str | Path) -> str:
    """Return DATABASE_URL, or the SQLite file in the instance folder when it is empty."""
    if configured:
        return configured
    path = Path(instance_path) / DEFAULT_SQLITE_NAME
    return f"sqlite:///{path}"


def _normalized(url: str) -> URL:
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises several types for a bad URL
        raise ConfigError(f"DATABASE_URL is not a database URL: {exc}") from None
    # psycopg 3 is the PostgreSQL driver we ship; plain postgresql:// would want psycopg2.
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_engine(url: URL, timeout: float | None) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    busy = SQLITE_BUSY_SECONDS if timeout is None else timeout
    kwargs: dict[str, Any] = {
        "connect_args": {"timeout": busy, "check_same_thread": False}
    }
    if in_memory:
        kwargs["poolclass"] = StaticPool
    else:
        Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's own handling breaks SAVEPOINT).
        dbapi_connection.isolation_level = None
        record.info[BUSY_DEFAULT_MS] = int(busy * 1000)  # for _begin_write()
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute("PRAGMA synchronous=FULL")  # see the module docstring
        # Checkpoints come from a thread (checkpointer.py); this is the fallback.
        cursor.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_PAGES}")
        cursor.close()
        # Outside the guard's work past_deadline() is always False: no limit.
        dbapi_connection.set_progress_handler(past_deadline, PROGRESS_STEPS)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock up front: a read-then-write transaction can otherwise
        # fail at once with "database is locked" when another process wrote meanwhile.
        # A single read (reading()) is its own transaction in SQLite's autocommit mode:
        # no BEGIN, no write lock, no wait for another process's writer.
        if connection.get_execution_options().get(READ_ONLY):
            return
        _begin_write(connection)

    if not in_memory:
        _use_wal(engine)
    return engine


def _begin_write(connection: Connection) -> None:
    """Begin a SQLite write transaction: FULL sync unless relaxed_commit() marked it (a
    relaxed commit before may have left NORMAL), the busy wait, BEGIN IMMEDIATE."""
    info = connection.connection.info
    if not info.get(RELAXED):
        _synchronous(connection, "FULL")
    _limit_busy_wait(connection, info[BUSY_DEFAULT_MS])
    _begin_immediate(connection)


def _begin_immediate(connection: Connection) -> None:
    """BEGIN IMMEDIATE on the driver's own connection, its error as SQLAlchemy's class.

    exec_driver_sql() would cost SQLAlchemy's whole execute path (about 20 us) for a
    statement with no parameters and no rows, on every webhook's write transaction.
    """
    raw = connection.connection.driver_connection
    assert raw is not None
    try:
        raw.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as error:  # "database is locked" past busy_timeout: the guard's cue
        raise DBAPIError.instance("BEGIN IMMEDIATE", (), error, sqlite3.Error) from error


@contextmanager
def driver_transaction(connection: Connection) -> Iterator[None]:
    """A SQLite write transaction on the driver's own connection, for statements run on
    its cursor (driver_statement.py): what the begin and commit events do (the guard's
    checks, _begin_write()), then COMMIT, or ROLLBACK on any error.

    SQLAlchemy's Transaction, its events and its commit path cost 3.3% of a signed
    webhook's instructions around the same BEGIN and COMMIT. SQLAlchemy does not know
    of this transaction, so nothing inside may run through it. Errors reach the guard
    as SQLAlchemy's classes.
    """
    raw = connection.connection.driver_connection
    assert raw is not None
    raise_if_abandoned()  # as the guard's begin event would
    _begin_write(connection)  # as _on_begin does
    try:
        yield
        raise_if_abandoned()  # as the commit event would
        try:
            raw.execute("COMMIT")
        except sqlite3.Error as error:
            raise DBAPIError.instance("COMMIT", (), error, sqlite3.Error) from error
    except BaseException:
        if raw.in_transaction:
            try:
                raw.execute("ROLLBACK")
            except sqlite3.Error:
                connection.invalidate()  # never back to the pool inside a transaction
        raise


def _limit_busy_wait(connection: Connection, default_ms: int) -> None:
    """Let BEGIN IMMEDIATE wait for another writer no longer than the guard's work has
    left, and `default_ms` outside the guard: the progress handler does not run while
    SQLite sleeps in its busy wait, so the deadline has to be the wait's own limit."""
    left = remaining()
    # Down to a multiple of BUSY_STEP_MS: the time left differs by a millisecond or two
    # from one webhook to the next, and an unchanged limit needs no PRAGMA.
    wanted = default_ms if left is None else \
        max(1, min(int(left * 1000) // BUSY_STEP_MS * BUSY_STEP_MS, default_ms))
    info = connection.connection.info
    if info.get(BUSY_MS, default_ms) == wanted:
        return
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.execute(f"PRAGMA busy_timeout={wanted}")
    info[BUSY_MS] = wanted


def _use_wal(engine: Engine) -> None:
    """Switch the file to WAL (readers never wait for the writer) once, at start-up.

    WAL is a property of the file, so workers never touch it again. The switch
    needs the file to itself and ignores the busy timeout: retry while another
    process starting at the same moment holds it.
    """
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        while raw.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            try:
                raw.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    engine.dispose()


def _postgres_limits(url: URL, timeout: float) -> dict[str, Any]:
    """libpq settings that bound connecting, each statement and a silent peer."""
    given = dict(url.query)
    limits: dict[str, Any] = {
        "connect_timeout": max(PG_MIN_CONNECT_SECONDS, math.ceil(timeout)),
        # A peer that vanished (no RST: a cable, a crashed host) is found in about
        # PG_PEER_SECONDS by keepalive probes when idle, or when data stays unacknowledged
        # (Linux TCP_USER_TIMEOUT), instead of the kernel's default of minutes.
        "keepalives": 1, "keepalives_idle": PG_PEER_SECONDS, "keepalives_interval": 1,
        "keepalives_count": 3, "tcp_user_timeout": PG_PEER_SECONDS * 1000,
    }
    limits = {key: value for key, value in limits.items() if key not in given}
    # statement_timeout rides in `options`, beside whatever the URL put there
    # (search_path in the tests): connect_args replace the URL's keys, not merge them.
    # synchronous_commit=off too: see the module docstring and _durable_transactions().
    options = str(given.get("options", ""))
    limits["options"] = (f"{options} -c statement_timeout={int(timeout * 1000)}"
                         " -c synchronous_commit=off").strip()
    return limits


def open_engine(url: str, timeout: float | None = None) -> Engine:
    """Create the engine for a URL, with SQLite set up for several processes.

    `timeout` (seconds) bounds each statement, connection attempt and lock wait;
    None keeps the drivers' own limits (the command line's long purges).
    """
    parsed = _normalized(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, timeout)
    if timeout is None:
        return create_engine(parsed, pool_pre_ping=True)
    engine = create_engine(parsed, pool_timeout=timeout,
                           connect_args=_postgres_limits(parsed, timeout))
    _ping_on_checkout(engine)
    _durable_transactions(engine)
    return engine


def _durable_transactions(engine: Engine) -> None:
    """Every write transaction on the web app's PostgreSQL connections commits durably.

    The connections default to synchronous_commit=off (_postgres_limits) for the
    webhook's one-statement record, which runs in autocommit outside any transaction:
    a sync worker no longer idles while the server flushes the WAL for it
    (bench/webhook_load.py, four alternated pairs: 0.19x-0.23x the trivial endpoint's
    requests per second with the flush, 0.23x-0.28x without). Anything else is a
    transaction begun by SQLAlchemy, and sets it back on for itself (SET LOCAL: it ends
    with the transaction, whatever way). A single read (reading()) commits nothing.
    """

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            return
        connection.exec_driver_sql("SET LOCAL synchronous_commit = on")


def _ping_on_checkout(engine: Engine) -> None:
    """pool_pre_ping as a checkout listener, for connections idle PING_AFTER_IDLE_SECONDS.

    The store guard registers the connection first (its own listener), so it can cut
    a ping stuck on a frozen server. A connection back in the pool a moment ago is
    used without one: under traffic the ping was one round trip in ten per webhook,
    and a connection that died meanwhile fails its first statement instead, which
    the guard treats as an outage (answered, spooled, replayed within a second).
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(RETURNED_AT)
        if returned is not None and time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                # The pool drops this connection and checks out a fresh one.
                raise DisconnectionError(str(exc)) from exc
            raise


class WriterQueue:
    """One writer at a time across a SQLite file's processes and threads, woken in turn.

    SQLite allows one writer per file, and a writer that finds it taken waits
    in SQLite's busy handler, which sleeps 1, 2, 5, 10 ... 100 ms between tries:
    under bench/webhook_load.py, BEGIN IMMEDIATE waited 8-34 ms at the 99th
    percentile and up to 430 ms. Here writers queue on a thread lock, then on
    flock() of a file beside the database, and the kernel wakes the next one
    the moment the lock is free. A process that dies releases its flock.

    Inside the guard's work the wait ends at the work's deadline: the thread lock
    with a timeout, the flock() by trying without blocking, sleeping 30 us, then
    1.3 times as long each time up to 2 ms (another process's writer holds it
    for a transaction, about 0.3 ms, so the tries that matter are the first
    few; starting at 0.1 ms and doubling overslept the release by up to 0.4 ms).
    Outside it (the command line) flock() blocks.
    """

    def __init__(self, lock_path: str) -> None:
        self._path = lock_path
        self._threads = threading.Lock()
        self._fd: tuple[int, int] | None = None  # (pid, fd): never shared across a fork

    def _file(self) -> int:
        pid = os.getpid()
        if self._fd is None or self._fd[0] != pid:
            if self._fd is not None:
                os.close(self._fd[1])  # the parent's descriptor; its lock stays the parent's
            self._fd = (pid, os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600))
        return self._fd[1]

    def __enter__(self) -> None:
        # Inside the store guard, wait no longer than the work's own time limit; a
        # writer stuck past it (a stalled disk) makes the guard give up on the work.
        left = remaining()
        if not self._threads.acquire(timeout=-1 if left is None else max(left, 0.0)):
            raise StoreUnavailable("another writer held the database past the time limit")
        try:
            if left is None:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
            else:
                self._flock_until(time.monotonic() + left)
        except BaseException:
            self._threads.release()
            raise

    def _flock_until(self, deadline: float) -> None:
        """Take the file lock, trying until `deadline` (monotonic) without ever blocking."""
        pause = FLOCK_FIRST_SLEEP
        while True:
            try:
                fcntl.flock(self._file(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreUnavailable(
                        "another process's writer held the database past the time limit"
                    ) from None
                time.sleep(min(pause, left))
                pause = min(pause * FLOCK_SLEEP_GROWTH, FLOCK_LONGEST_SLEEP)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        try:
            fcntl.flock(self._file(), fcntl.LOCK_UN)
        finally:
            self._threads.release()


def sqlite_file(engine: Engine) -> Path | None:
    """The SQLite database's file, or None (PostgreSQL, or SQLite in memory)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        return None
    return Path(str(database))


def writer_queue(engine: Engine) -> AbstractContextManager[Any]:
    """Return what writers of this database queue on: see WriterQueue (SQLite only)."""
    if engine.dialect.name != "sqlite":
        return nullcontext()  # PostgreSQL locks rows, not the database
    database = sqlite_file(engine)
    if database is None:
        return threading.Lock()  # in memory: one process
    return WriterQueue(f"{database}-writer.lock")


@contextmanager
def reading(connection: Connection) -> Iterator[Connection]:
    """Run one SELECT as its own transaction (one statement: one snapshot).

    SQLite: no BEGIN IMMEDIATE, so no write lock. PostgreSQL: in autocommit, so
    no BEGIN and COMMIT round trips around the statement (psycopg's autocommit
    flag is the client's own: setting it sends nothing; psycopg.org/psycopg3/docs/
    basic/transactions.html).
    """
    connection.execution_options(**{READ_ONLY: True})
    raw = connection.connection.driver_connection if connection.dialect.name == "postgresql" \
        else None
    if raw is not None:
        raw.autocommit = True
    try:
        with connection.begin():
            yield connection
    finally:
        connection.execution_options(**{READ_ONLY: False})
        if raw is not None:
            _end_autocommit(connection, raw)


@contextmanager
def autocommit(connection: Connection) -> Iterator[None]:
    """One statement on the driver's cursor as its own transaction: PostgreSQL in
    psycopg's autocommit (as reading() sets it, without SQLAlchemy's begin and
    commit around it); SQLite's driver connection is in autocommit already."""
    if connection.dialect.name != "postgresql":
        yield
        return
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.autocommit = True
    try:
        yield
    finally:
        _end_autocommit(connection, raw)


def _end_autocommit(connection: Connection, raw: Any) -> None:
    """Back to transactions; a connection that cannot go back never returns to the pool
    (a write on it would commit statement by statement)."""
    try:
        raw.autocommit = False
    except Exception:  # noqa: BLE001 - broken or cut (the guard): psycopg raises several types
        connection.invalidate()


@contextmanager
def relaxed_commit(connection: Connection, relaxed: bool = True) -> Iterator[None]:
    """Commit without fsync inside (SQLite synchronous=NORMAL); see the module docstring.

    The connection stays at NORMAL afterwards, so the next ordinary message needs no
    PRAGMA at all (the two per message cost about 17 us of a webhook's 600 in one
    process); any other transaction's BEGIN sets FULL again (_on_begin).
    """
    if not relaxed or connection.dialect.name != "sqlite":
        yield
        return
    _synchronous(connection, "NORMAL")
    info = connection.connection.info
    info[RELAXED] = True
    try:
        yield
    finally:
        info.pop(RELAXED, None)


def harden(connection: Connection) -> None:
    """Make every commit so far on this SQLite file durable: fdatasync its WAL.

    What a FULL commit does inside SQLite, done after the commit instead, where no
    lock is held: a FULL commit syncs the WAL while it holds the write lock (and the
    store's writer queue), so every other worker's write waits for the disk. On this
    project's bench machine such a sync, carrying every relaxed commit before it,
    took up to 1.3 s, and held both workers for it (README "Performance"). The WAL
    holds the commit's frames until a checkpoint, and a checkpoint syncs the WAL
    before it copies it and the database file after (sqlite.org/wal.html), so
    whatever a checkpoint moved meanwhile is durable too. No-op on PostgreSQL or
    SQLite in memory; a file not in WAL mode gets its database file synced.
    """
    database = sqlite_file(connection.engine)
    if database is None:
        return
    wal = database.with_name(database.name + "-wal")
    fd = os.open(wal if wal.exists() else database, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _synchronous(connection: Connection, level: str) -> None:
    """Set SQLite's PRAGMA synchronous (outside a transaction: at once) unless already so."""
    info = connection.connection.info
    if info.get(SYNCHRONOUS, "FULL") == level:
        return
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.execute(f"PRAGMA synchronous={level}")
    info[SYNCHRONOUS] = level


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest revision; never drops data (see migrations/)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Another instance may hold the lock while it migrates: wait for it, and let
            # a long migration run, whatever the webhook's statement_timeout is.
            connection.execute(text("SET LOCAL statement_timeout = 0"))
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
