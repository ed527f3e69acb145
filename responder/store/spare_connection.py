"""The last webhook's SQLite connection, kept checked out for the next one.

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
a thread that ends leaves nothing behind. Only for a SQLite file: its
connections never die idle, while PostgreSQL's pool pings a connection that
sat idle on checkout (database._ping_on_checkout), which a spare would skip.

A connection whose work raised is given back to the pool, not kept (it may be
interrupted or broken); one that comes back with a transaction open is rolled
back, so no read snapshot stays pinned between webhooks (it would stop the
WAL's checkpoints). A forked child never uses its parent's spare.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sqlalchemy import Connection, Engine

from responder.store.guard import watched


class SpareConnection:
    """At most one pooled connection kept checked out between pieces of work."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._spare: tuple[int, Connection] | None = None  # (pid, connection)

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
        if spare is not None and spare[0] == os.getpid() and not spare[1].closed \
                and not spare[1].invalidated:
            return spare[1]
        return self._engine.connect()

    def _keep(self, connection: Connection) -> None:
        with self._lock:
            if self._spare is None:
                self._spare = (os.getpid(), connection)
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
