"""Copy a SQLite file's WAL into the database from a background thread, not a webhook.

    checkpointer = WalCheckpointer(path)
    checkpointer.ensure_running()   # each process's first caller starts its thread
    checkpointer.stop()

Why: SQLite checkpoints on its own when a commit leaves the WAL over
`wal_autocheckpoint` pages (1,000 by default), inside that COMMIT, so inside the
store's writer queue. With synchronous=NORMAL a checkpoint syncs the WAL, then
the database file, and every other worker's write waits for both syncs: under
bench/webhook_load.py both workers stood still together several times a second,
the longest for over a second (README "Performance").

Here one thread per process runs a PASSIVE checkpoint (it never waits for a
reader or a writer, and neither waits for it; sqlite.org/c3ref/wal_checkpoint_v2.html)
every INTERVAL_SECONDS on a connection of its own; SQLite releases the GIL while
it works, so the process goes on answering. Such a checkpoint copies the frames
there were when it began; the WAL starts over only once a writer finds every
frame copied, which under steady writes never happens, so past RESTART_FRAMES
the thread copies what came meanwhile inside the writer queue (2-10 ms under the
bench's load, against the whole checkpoint's syncs before). The store's
connections keep an automatic checkpoint at FALLBACK_PAGES, far above what the
thread lets the WAL reach, for a process that has no thread (the CLI) or one
that falls behind.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

log = logging.getLogger("calfline.store")
# At about 1,000 webhooks a second and ten WAL frames each, a quarter second of them
# is 2,500 frames (10 MB of WAL).
INTERVAL_SECONDS = 0.25
# Past this many WAL frames (8 MB) the checkpoint copies the rest inside the writer
# queue, so that the next writer starts the WAL over (sqlite.org/wal.html).
RESTART_FRAMES = 2_000
# wal_autocheckpoint for the store's connections: 40 MB of WAL.
FALLBACK_PAGES = 10_000


class WalCheckpointer:
    """One background thread per process that checkpoints one SQLite file's WAL."""

    def __init__(self, database: Path, writers: AbstractContextManager[Any] | None = None,
                 interval: float = INTERVAL_SECONDS,
                 restart_frames: int = RESTART_FRAMES) -> None:
        self._path = database
        self._restart_frames = restart_frames
        self._writers = writers if writers is not None else nullcontext()
        self._uri = f"{database.absolute().as_uri()}?mode=rw"  # never creates the file
        self._interval = interval
        self._lock = threading.Lock()
        self._pid: int | None = None  # the process whose thread runs
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def ensure_running(self) -> None:
        """Start this process's thread unless it runs (a forked child starts its own)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid() or self._stopped.is_set():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="calfline-checkpoint",
                                            daemon=True)
            self._thread.start()

    def alive(self) -> bool:
        """Whether this process's thread is running."""
        thread = self._thread
        return thread is not None and self._pid == os.getpid() and thread.is_alive()

    def stop(self) -> None:
        """End the thread (at its next turn); it never starts again."""
        self._stopped.set()

    def _run(self) -> None:
        """Checkpoint every interval until stopped, or until the file is gone (a test's,
        or one deleted under the store: SQLite's own checkpoint remains)."""
        connection: sqlite3.Connection | None = None
        failing = False
        while not self._stopped.wait(self._interval):
            try:
                if connection is None:
                    connection = sqlite3.connect(self._uri, uri=True, isolation_level=None,
                                                 check_same_thread=False)
                self._checkpoint(connection)
                failing = False
            except (sqlite3.Error, OSError) as error:  # failing: try again; file gone: end
                if not self._path.exists():
                    break
                if not failing:
                    log.warning("WAL checkpoint failed (%s); SQLite's own checkpoint "
                                "remains, at %d pages", error, FALLBACK_PAGES)
                failing = True
                if connection is not None:
                    connection.close()
                    connection = None
        if connection is not None:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        """Copy the WAL into the database; once it is long, copy the rest inside the
        writer queue. A checkpoint copies only the frames there were when it began and
        writers keep adding more, so without a pass that no writer can join the WAL
        never starts over (under bench/webhook_load.py it grew to 800 MB)."""
        busy, frames, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if busy or frames < self._restart_frames:
            return
        with self._writers:  # only what was written during the first pass is left
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
