"""The last webhook's connection, kept checked out for the next one.

    spare = SpareConnection(engine)
    with spare.connection() as connection:   # the spare if there is one, else the pool's
        ...                                  # no transaction may stay open after

Checking a connection out of SQLAlchemy's pool and back for every webhook
costs about 11 us in a loop of nothing else, but under bench/webhook_load.py's
load keeping it between webhooks took 0.88x-0.95x the worker CPU per webhook
(five alternated pairs of runs) and 0.88x-0.94x in one process: the checkout,
a new `Connection` and the return's reset touch objects that the rest of the
webhook has pushed out of the CPU's caches.

One spare per store and process, not one per thread: a sync worker has one
request thread, and with several threads the others use the pool as before,
so the store never holds more than one connection beyond the pool's count and
a thread that ends leaves nothing behind.

A SQLite file's connections never die idle. A PostgreSQL connection can (a
server restart, a proxy's idle timeout), so with `ping_after` a spare that sat
that long is pinged first, as the pool pings on checkout
(database._ping_on_checkout): one that fails the ping as disconnected is
dropped and the pool's next connection used. In one process a signed webhook
on PostgreSQL took 2.7% fewer instructions with the spare kept (callgrind,
3,472,268 against 3,377,015 per webhook).

A connection whose work raised is given back to the pool, not kept (it may be
interrupted or broken); one that comes back with a transaction open is rolled
back, so no read snapshot stays pinned between webhooks (it would stop the
WAL's checkpoints). A forked child never uses its parent's spare.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sqlalchemy import Connection, Engine

from responder.store.guard import watched


class SpareConnection:
    """At most one pooled connection kept checked out between pieces of work."""

    def __init__(self, engine: Engine, ping_after: float | None = None) -> None:
        self._engine = engine
        self._ping_after = ping_after  # seconds idle before a spare is pinged; None: never
        self._lock = threading.Lock()
        self._spare: tuple[int, Connection, float] | None = None  # (pid, connection, kept at)

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for one piece of work, open and outside a transaction."""
        connection = self._take()
        try:
            with watched(connection.connection.dbapi_connection):
                yield connection
            if connection.in_transaction():
                connection.rollback()
        except BaseException:
            _give_back(connection)
            raise
        self._keep(connection)

    def _take(self) -> Connection:
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is None or spare[0] != os.getpid() or spare[1].closed \
                or spare[1].invalidated:
            return self._engine.connect()
        _, connection, kept_at = spare
        if self._ping_after is not None and time.monotonic() - kept_at >= self._ping_after:
            return self._alive(connection)
        return connection

    def _alive(self, connection: Connection) -> Connection:
        """The spare after a ping, or the pool's next connection if it is disconnected.
        The ping is registered with the current work, so the guard can cut it."""
        dialect, raw = connection.dialect, connection.connection.dbapi_connection
        assert raw is not None  # a connection neither closed nor invalidated
        try:
            with watched(raw):
                dialect.do_ping(raw)
        except BaseException as error:
            gone = isinstance(error, dialect.loaded_dbapi.Error) \
                and dialect.is_disconnect(error, raw, None)
            if gone:
                connection.invalidate(error)
            _give_back(connection)
            if not gone:
                raise
            return self._engine.connect()
        return connection

    def _keep(self, connection: Connection) -> None:
        with self._lock:
            if self._spare is None:
                self._spare = (os.getpid(), connection, time.monotonic())
                return
        _give_back(connection)  # another thread's is kept already

    def close(self) -> None:
        """Give the spare back to the pool (at shutdown, in tests)."""
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is not None and spare[0] == os.getpid():
            _give_back(spare[1])


def _give_back(connection: Connection) -> None:
    """Return a connection to the pool; closing a broken one may raise again."""
    with suppress(Exception):
        connection.close()
