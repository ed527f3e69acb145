"""Abandon store work that runs past its deadline in the thread that started it.

    watchdog = Watchdog()
    watchdog.watch(work)    # work.abandon() is called once time.monotonic() >= work.deadline
    ...                     # the work runs in the caller's thread
    watchdog.release(work)  # done in time: nothing happens

Why: a PostgreSQL webhook's store work used to run on the guard's thread pool
only so that the webhook could stop waiting for a frozen server (psycopg has no
read timeout). That cost two thread wake-ups and GIL hand-overs per webhook:
under bench/webhook_load.py the workers spent 11% more CPU per request than with
the work in their own thread. Here one thread per process does the waiting for
all of them: it sleeps until the earliest deadline it watches and abandons what
is still running then (the guard's abandon() shuts the connection's socket, so
the blocked read fails at once). Work that finishes first is only dropped from
the set; a new deadline later than the planned wake-up (the usual case, every
webhook having the same limit) wakes nobody.
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Protocol


class Abandonable(Protocol):
    """Work with a monotonic deadline that can be told to stop."""

    deadline: float

    def abandon(self) -> None:
        """Stop waiting: cut whatever the work is blocked on."""


class Watchdog:
    """One thread per process that abandons watched work at its deadline."""

    def __init__(self, name: str = "calfline-watchdog") -> None:
        self.name = name
        self._pid = -1  # the process whose thread and lock these are: a fork makes its own
        self._starting = threading.Lock()
        self._changed = threading.Condition()
        self._watched: set[Abandonable] = set()
        self._wake_at = math.inf

    def watch(self, work: Abandonable) -> None:
        """Abandon `work` at its deadline unless release() comes first."""
        if self._pid != os.getpid():
            self._start()
        with self._changed:
            self._watched.add(work)
            if work.deadline < self._wake_at:
                self._changed.notify()

    def release(self, work: Abandonable) -> None:
        """The work is over: stop watching it."""
        with self._changed:
            self._watched.discard(work)

    def stop(self) -> None:
        """End this process's thread (tests, shutdown); a later watch() starts another."""
        with self._changed:
            self._pid = -1
            stopped, self._changed = self._changed, threading.Condition()
            stopped.notify()

    def _start(self) -> None:
        """Start this process's thread: after a fork the parent's is gone, and its
        condition may have been held by it, so the child makes its own."""
        with self._starting:
            if self._pid == os.getpid():
                return
            self._changed = threading.Condition()
            self._watched = set()
            self._wake_at = math.inf
            threading.Thread(target=self._run, args=(self._changed,), name=self.name,
                             daemon=True).start()
            self._pid = os.getpid()

    def _run(self, changed: threading.Condition) -> None:
        with changed:
            while changed is self._changed:  # stop() replaced it: this thread is done
                now = time.monotonic()
                for work in [w for w in self._watched if w.deadline <= now]:
                    self._watched.discard(work)
                    work.abandon()
                self._wake_at = min((w.deadline for w in self._watched), default=math.inf)
                changed.wait(None if self._wake_at == math.inf else self._wake_at - now)
