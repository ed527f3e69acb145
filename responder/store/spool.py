"""Turns the database could not take: an append-only, fsynced file, replayed once it is back.

    spool = TurnSpool(directory)
    spool.append(turn)              # one JSON line, fsynced before the webhook answers
    spool.pending() -> int          # turns waiting: the gauge in logs and /readyz
    spool.last_append_age() -> float | None   # is it growing?
    with spool.replaying() as batch:    # None when empty or another process replays
        for turn in batch: ...
        batch.quarantine(turn, why)     # a turn the database refuses for good

Several worker processes share the directory. Appends hold a shared flock on
`spool.lock` and write one whole line with O_APPEND; a replay holds `replay.lock`
and takes `spool.lock` exclusively only to rename `turns.jsonl` to
`turns.replaying.jsonl`, so new turns go on into a fresh file meanwhile. The
batch file is deleted when the replay got through it; a replay that stopped half-way
(the database failed again, the process died) leaves it, and the next one starts
it over. Every turn carries its webhook's dedupe key, so however often a turn is
replayed the store keeps one record of it and the outbox one clinic alert.

If the spool itself cannot be written (the same full or read-only disk), the turn
is kept in this process's memory and replayed from there: the reply has gone out
either way, only a restart before the database is back would lose the record.

The file holds what the sender wrote and their full number (a clinic alert needs
it): it is created 0600 and deleted once replayed.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from responder.store.turns import Inbound, SpooledTurn

log = logging.getLogger("calfline.spool")
FORMAT_VERSION = 1
ACTIVE = "turns.jsonl"
REPLAYING = "turns.replaying.jsonl"
FAILED = "turns.failed.jsonl"


def turn_to_line(turn: SpooledTurn) -> str:
    """One line of the spool file (JSON, no newline)."""
    fields: dict[str, Any] = asdict(turn)
    fields["at"] = turn.at.isoformat()
    return json.dumps({"v": FORMAT_VERSION, **fields}, ensure_ascii=False, separators=(",", ":"))


def turn_from_line(line: str) -> SpooledTurn:
    """Read one line written by turn_to_line()."""
    fields = json.loads(line)
    if fields.pop("v", None) != FORMAT_VERSION:
        raise ValueError("unknown spool line format")
    fields["inbound"] = Inbound(**fields["inbound"])
    fields["at"] = datetime.fromisoformat(fields["at"])
    return SpooledTurn(**fields)


@contextmanager
def _flock(path: Path, mode: int) -> Iterator[bool]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as file:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 16), b""))
    except OSError:  # none there, or the directory is gone or unreadable
        return 0


class Batch:
    """The turns one replay works through."""

    def __init__(self, spool: TurnSpool, turns: list[SpooledTurn], unreadable: list[str]) -> None:
        self._spool = spool
        self.turns = turns
        for line in unreadable:
            spool.quarantine_line(line, "unreadable line")

    def __iter__(self) -> Iterator[SpooledTurn]:
        return iter(self.turns)

    def __len__(self) -> int:
        return len(self.turns)

    def quarantine(self, turn: SpooledTurn, why: str) -> None:
        """Set aside a turn the database refuses for good, so the rest can go in."""
        self._spool.quarantine_line(turn_to_line(turn), why)


class TurnSpool:
    """An append-only file of turns waiting for the database, shared by worker processes."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.active = self.directory / ACTIVE
        self.batch_file = self.directory / REPLAYING
        self.failed = self.directory / FAILED
        self._memory: list[SpooledTurn] = []  # turns the disk refused, this process only
        self._memory_lock = threading.Lock()
        self._disk_failed = False
        self._move_failed = False

    def _ensure_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def append(self, turn: SpooledTurn) -> bool:
        """Write one turn durably (fsynced); False when it could only be kept in memory."""
        line = (turn_to_line(turn) + "\n").encode("utf-8")
        try:
            self._ensure_directory()
            with _flock(self.directory / "spool.lock", fcntl.LOCK_SH):
                fd = os.open(self.active, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line)  # one write of one line: appends never interleave
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            with self._memory_lock:
                self._memory.append(turn)
                first = not self._disk_failed
                self._disk_failed = True
            if first:
                log.error("spool not writable: keeping turns in memory until the database "
                          "is back", extra={"error": f"{type(exc).__name__}: {exc.strerror}"})
            return False
        if self._disk_failed:
            with self._memory_lock:
                self._disk_failed = False
            log.warning("spool writable again")
        return True

    def pending(self) -> int:
        """Turns waiting to be replayed: on disk (every process's) and in this memory."""
        return _count_lines(self.active) + _count_lines(self.batch_file) + len(self._memory)

    def last_append_age(self) -> float | None:
        """Seconds since a turn was last appended to the file, or None if none waits there."""
        try:
            stat = self.active.stat()
        except OSError:
            return None
        return time.time() - stat.st_mtime if stat.st_size else None

    @contextmanager
    def replaying(self) -> Iterator[Batch | None]:
        """Hold the replay lock and yield the waiting turns; delete them if no error.

        Yields None when nothing waits or another process is replaying.
        """
        on_disk = self.directory.is_dir()
        with self._replay_lock() if on_disk else nullcontext(True) as mine:
            if not mine:
                yield None
                return
            turns: list[SpooledTurn] = []
            unreadable: list[str] = []
            if on_disk:
                self._take_active()
                turns, unreadable = self._read(self.batch_file)
            with self._memory_lock:
                memory, self._memory = self._memory, []
            if not turns and not unreadable and not memory:
                yield None
                return
            try:
                yield Batch(self, turns + memory, unreadable)
            except BaseException:
                with self._memory_lock:
                    self._memory[:0] = memory
                raise
            if on_disk:
                self.batch_file.unlink(missing_ok=True)

    @contextmanager
    def _replay_lock(self) -> Iterator[bool]:
        try:
            self._ensure_directory()
            fd = os.open(self.directory / "replay.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            # A read-only or full spool directory: only this process's memory can replay.
            yield True
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def _take_active(self) -> None:
        """Move new turns into the batch file (after a batch a previous replay left)."""
        try:
            with _flock(self.directory / "spool.lock", fcntl.LOCK_EX):
                if not self.active.exists():
                    return
                if not self.batch_file.exists():
                    os.rename(self.active, self.batch_file)
                else:
                    with open(self.active, "rb") as new, open(self.batch_file, "ab") as batch:
                        batch.write(new.read())
                        batch.flush()
                        os.fsync(batch.fileno())
                    self.active.unlink()
                _fsync_directory(self.directory)
        except OSError as exc:
            if not self._move_failed:  # once until it works again: the replayer retries often
                log.warning("spool: cannot move new turns to replay",
                            extra={"error": f"{type(exc).__name__}: {exc.strerror}"})
            self._move_failed = True
            return
        self._move_failed = False

    def _read(self, path: Path) -> tuple[list[SpooledTurn], list[str]]:
        turns: list[SpooledTurn] = []
        unreadable: list[str] = []
        try:
            text = path.read_text("utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            return turns, unreadable
        except OSError as exc:
            log.warning("spool: cannot read waiting turns",
                        extra={"error": f"{type(exc).__name__}: {exc.strerror}"})
            return turns, unreadable
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                turns.append(turn_from_line(line))
            except (ValueError, TypeError, KeyError):
                unreadable.append(line)  # a line cut short by a crash mid-write
        return turns, unreadable

    def quarantine_line(self, line: str, why: str) -> None:
        """Keep a turn that cannot be replayed in turns.failed.jsonl, and say so."""
        log.error("spool: a turn cannot be recorded; kept in %s", self.failed.name,
                  extra={"reason": why})
        try:
            fd = os.open(self.failed, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line.rstrip("\n") + "\n").encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            log.error("spool: cannot keep the failed turn either")


def _fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (POSIX: fsync the directory itself)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
