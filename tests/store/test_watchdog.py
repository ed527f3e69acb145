"""The watchdog that cuts inline store work at its deadline (responder/store/watchdog.py)."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator

import pytest

from responder.store.watchdog import Watchdog


class Work:
    """Store work as the watchdog sees it: a deadline, and when it was abandoned."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.abandoned_at: float | None = None
        self.cut = threading.Event()

    def abandon(self) -> None:
        self.abandoned_at = time.monotonic()
        self.cut.set()


NAMES = itertools.count()


@pytest.fixture
def watchdog() -> Iterator[Watchdog]:
    dog = Watchdog(name=f"test-watchdog-{next(NAMES)}")  # apart from earlier tests' threads
    yield dog
    dog.stop()


def test_work_past_its_deadline_is_abandoned_then(watchdog: Watchdog) -> None:
    work = Work(0.1)
    watchdog.watch(work)
    assert work.cut.wait(2.0)
    assert work.abandoned_at is not None and 0 <= work.abandoned_at - work.deadline < 0.1


def test_work_released_in_time_is_left_alone(watchdog: Watchdog) -> None:
    done, late = Work(0.05), Work(0.15)
    watchdog.watch(done)
    watchdog.watch(late)
    watchdog.release(done)
    assert late.cut.wait(2.0)  # the watchdog woke past done's deadline, and left it
    assert done.abandoned_at is None


def test_an_earlier_deadline_wakes_a_watchdog_waiting_for_a_later_one(
        watchdog: Watchdog) -> None:
    slow, quick = Work(5.0), Work(0.1)
    watchdog.watch(slow)
    time.sleep(0.02)  # the watchdog now sleeps until slow's deadline
    watchdog.watch(quick)
    assert quick.cut.wait(1.0)
    assert slow.abandoned_at is None


def test_stop_ends_the_thread_and_a_later_watch_starts_another(watchdog: Watchdog) -> None:
    def running() -> int:
        return sum(t.name == watchdog.name for t in threading.enumerate())

    watchdog.watch(Work(0.01))
    assert running() == 1
    watchdog.stop()
    for _ in range(100):
        if running() == 0:
            break
        time.sleep(0.01)
    assert running() == 0
    work = Work(0.05)
    watchdog.watch(work)
    assert work.cut.wait(2.0) and running() == 1


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")
def test_a_forked_child_watches_with_its_own_thread(watchdog: Watchdog) -> None:
    watchdog.watch(Work(60.0))  # the parent's thread runs, watching
    child = os.fork()
    if child == 0:  # gunicorn's workers are forked like this, after preload_app
        work = Work(0.05)
        watchdog.watch(work)
        os._exit(0 if work.cut.wait(2.0) else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
