"""A local copy of the opt-out list, so the line stays quiet to STOPped senders in an outage.

    copy = OptOutCopy(path)
    copy.contains(sender_hash, our_number) -> bool   # re-reads the file when it changed
    copy.change(sender_hash, our_number, opted_out)  # a STOP or START this process saw
    copy.replace(pairs)                              # a fresh snapshot from the database

Only the keyed hashes are kept (like the database), in one JSON file next to the
spool: every change writes a temporary file, fsyncs it and renames it over the old
one under an flock, so every worker process and a restarted one read a whole list.
The database stays the truth: the copy is refreshed from it about once a minute
while it answers, and consulted only while it does not. A change made on another
server in the last minute can be missing; Twilio's own opt-out handling (a STOP
blocks sends to that number, error 21610) covers that gap.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("calfline.spool")
Pair = tuple[str, str]


class OptOutCopy:
    """(sender_hash, our_number) pairs that are opted out, in a file shared by processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._pairs: set[Pair] = set()
        self._seen: tuple[int, int, int] | None = None  # (inode, size, mtime_ns) last read
        self._lock = threading.Lock()
        self._write_failed = False

    def contains(self, sender_hash: str, our_number: str) -> bool:
        """True if the copy says this sender opted out of this number."""
        self._reload()
        return (sender_hash, our_number) in self._pairs

    def age(self) -> float | None:
        """Seconds since the file was last written, or None when there is none."""
        try:
            return time.time() - self.path.stat().st_mtime
        except OSError:
            return None

    def __len__(self) -> int:
        self._reload()
        return len(self._pairs)

    def change(self, sender_hash: str, our_number: str, opted_out: bool) -> None:
        """Record one opt-out or opt-in in the copy (and in this process at once)."""
        pair = (sender_hash, our_number)
        with self._lock, self._file_lock():
            self._reload(force=True)
            pairs = set(self._pairs)
            if opted_out:
                pairs.add(pair)
            else:
                pairs.discard(pair)
            self._pairs = pairs
            self._write(pairs)

    def replace(self, pairs: Iterable[Pair]) -> None:
        """Replace the copy with the database's list."""
        fresh = set(pairs)
        with self._lock, self._file_lock():
            self._pairs = fresh
            self._write(fresh)

    def _file_lock(self) -> _FileLock:
        return _FileLock(self.path.with_name(self.path.name + ".lock"))

    def _reload(self, force: bool = False) -> None:
        try:
            stat = self.path.stat()
        except OSError:
            return  # no copy yet (or unreadable): keep what this process knows
        seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if seen == self._seen and not force:
            return
        try:
            data = json.loads(self.path.read_text("utf-8"))
            pairs = {(str(h), str(n)) for h, n in data["pairs"]}
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("opt-out copy unreadable; keeping the last one read")
            return
        self._pairs, self._seen = pairs, seen

    def _write(self, pairs: set[Pair]) -> None:
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        body = json.dumps({"pairs": sorted(pairs)}, separators=(",", ":"))
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(temporary, "w", encoding="utf-8") as file:
                file.write(body)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except OSError as exc:
            if not self._write_failed:
                log.error("opt-out copy not writable: this process keeps it in memory",
                          extra={"error": f"{type(exc).__name__}: {exc.strerror}"})
            self._write_failed = True
            temporary.unlink(missing_ok=True)
            return
        self._write_failed = False
        try:
            stat = self.path.stat()
            self._seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        except OSError:
            pass


class _FileLock:
    """An exclusive flock for the copy's writers; works without one on a read-only disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError:
            self.fd = -1 if self.fd < 0 else self.fd

    def __exit__(self, *_: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
