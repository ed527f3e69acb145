"""The WAL is copied into the database file by a thread, and starts over under writes."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from responder.dialogue.conversation import ConversationState, Turn
from responder.dialogue.replies import Reply
from responder.nlu.matcher import Match
from responder.store.checkpointer import FALLBACK_PAGES, WalCheckpointer
from responder.store.conversation_store import ConversationStore, Inbound
from tests.databases import sqlite_url

FRAME = 4096 + 24  # a page and its frame header


def _database(path: Path) -> sqlite3.Connection:
    """A WAL-mode file whose writer never checkpoints by itself."""
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the table in the file itself
    return writer


def _rows_in_the_file_alone(path: Path, copy: Path) -> int:
    """How many rows the database file holds without its WAL."""
    shutil.copyfile(path, copy)
    reader = sqlite3.connect(copy)
    try:
        return int(reader.execute("SELECT count(*) FROM notes").fetchone()[0])
    finally:
        reader.close()


def _until(condition: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_the_thread_copies_the_wal_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    writer = _database(path)
    writer.executemany("INSERT INTO notes (body) VALUES (?)", [("x" * 200,)] * 50)
    copy = tmp_path / "copy.sqlite3"
    assert _rows_in_the_file_alone(path, copy) == 0  # all of it still in the WAL
    checkpointer = WalCheckpointer(path, interval=0.02)
    checkpointer.ensure_running()
    try:
        assert _until(lambda: _rows_in_the_file_alone(path, copy) == 50)
    finally:
        checkpointer.stop()
        writer.close()


WRITES = 3000  # each a transaction of its own: at least one WAL frame


def _write(writer: sqlite3.Connection, queue: threading.Lock) -> None:
    for _ in range(WRITES):
        with queue:
            writer.execute("INSERT INTO notes (body) VALUES (?)", ("y" * 500,))
        time.sleep(0)  # let the checkpoint thread in, as a webhook's other work would


def _longest_wal_under_writes(tmp_path: Path, restart_frames: int | None) -> int:
    """Frames in the WAL file after WRITES steady writes, checkpointed by the
    thread (restart_frames None: without its pass inside the writer queue)."""
    path = tmp_path / f"steady-{restart_frames}.sqlite3"
    writer, queue = _database(path), threading.Lock()
    checkpointer = WalCheckpointer(path, queue if restart_frames else None, interval=0.01,
                                   restart_frames=restart_frames or 10**9)
    checkpointer.ensure_running()
    try:
        _write(writer, queue)
        return (path.with_name(path.name + "-wal").stat().st_size - 32) // FRAME
    finally:
        checkpointer.stop()
        writer.close()  # the last connection: it checkpoints and removes the WAL


def test_a_long_wal_starts_over_under_steady_writes(tmp_path: Path) -> None:
    restarting = _longest_wal_under_writes(tmp_path, restart_frames=100)
    growing = _longest_wal_under_writes(tmp_path, restart_frames=None)
    # The WAL file never shrinks: its size is its peak.
    assert growing >= WRITES and restarting < WRITES // 2


def test_the_store_leaves_checkpoints_to_its_thread(tmp_path: Path) -> None:
    store = ConversationStore.open(sqlite_url(tmp_path), "a-long-random-test-secret")
    match = Match("calf cramp", "calf cramp", "cramp_now", 0.9)
    turn = Turn(match, Reply("Stretch it", "cramp_now.sms"), ConversationState())
    store.record(Inbound("sms", "+15557654321", "+15550001000", "calf cramp"), turn)

    checkpointer = store._checkpointer
    assert checkpointer is not None and checkpointer.alive()
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == FALLBACK_PAGES
    store.close()
    assert _until(lambda: not checkpointer.alive(), seconds=5)


def test_the_thread_ends_when_its_file_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "gone.sqlite3"
    _database(path).close()
    checkpointer = WalCheckpointer(path, interval=0.01)
    checkpointer.ensure_running()
    assert checkpointer.alive()
    for file in tmp_path.iterdir():
        file.unlink()
    assert _until(lambda: not checkpointer.alive(), seconds=5)
