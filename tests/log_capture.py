"""Capture what one of CalfLine's loggers emits (they do not propagate, so caplog misses them)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class Lines(logging.Handler):
    """Every record a logger emits, kept in order."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def captured(name: str) -> Iterator[Lines]:
    """Collect the records of logger `name` inside the block."""
    lines, logger = Lines(), logging.getLogger(name)
    logger.addHandler(lines)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)
