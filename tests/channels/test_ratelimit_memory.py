"""The in-process moving window: exact counts, no doubling at a boundary, idle keys forgotten."""

from __future__ import annotations

import threading
import time

from limits import parse

from responder.channels.ratelimit import MemoryCounter


def test_the_window_moves_with_each_hit() -> None:
    counter, item = MemoryCounter(), parse("2/2 seconds")
    assert [counter.hit(item, "sender", "a") for _ in range(2)] == [None, None]
    wait = counter.hit(item, "sender", "a")
    assert wait is not None and 1.5 < wait <= 2.0
    time.sleep(1.1)  # a fixed window could have turned over here; a moving one has not
    assert counter.hit(item, "sender", "a") is not None
    time.sleep(1.0)
    assert counter.hit(item, "sender", "a") is None
    assert counter.hit(item, "sender", "b") is None  # keys are independent


def test_refused_hits_do_not_count() -> None:
    counter, item = MemoryCounter(), parse("1/second")
    assert counter.hit(item, "ip", "x") is None
    assert all(counter.hit(item, "ip", "x") is not None for _ in range(50))
    time.sleep(1.05)
    assert counter.hit(item, "ip", "x") is None


def test_concurrent_hits_never_exceed_the_limit() -> None:
    counter, item = MemoryCounter(), parse("100/minute")
    allowed: list[bool] = []
    barrier = threading.Barrier(8)

    def send() -> None:
        barrier.wait()
        allowed.extend(counter.hit(item, "sender", "s") is None for _ in range(50))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 100


def test_idle_keys_are_forgotten() -> None:
    counter, item = MemoryCounter(sweep_seconds=0.0), parse("1/second")
    for n in range(100):
        counter.hit(item, "sender", str(n))
    assert len(counter) == 100
    time.sleep(1.05)
    counter.hit(item, "sender", "new")
    assert len(counter) == 1
