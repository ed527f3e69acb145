"""The spool: whole fsynced lines from many processes, replayed until it gets through once."""

from __future__ import annotations

import multiprocessing
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from responder.store.optout_copy import OptOutCopy
from responder.store.spool import TurnSpool, turn_from_line, turn_to_line
from responder.store.turns import Inbound, SpooledTurn
from tests.log_capture import captured

AT = datetime(2026, 5, 1, 7, 30, tzinfo=UTC)


def _turn(n: int, body: str = "calf cramp") -> SpooledTurn:
    inbound = Inbound("sms", "+15550001111", "+15550002222", body, f"SM{n:032d}", f"key{n}")
    return SpooledTurn(inbound, AT, "cramp_now", 0.9, "Straighten your leg.", "cramp_now.sms")


def test_a_turn_survives_the_round_trip_through_a_line() -> None:
    turn = SpooledTurn(Inbound("voice", "+1555", "+1666", "mi pantorrilla \u00e9", None, "k"),
                       AT, None, None, "", "system.menu", opt_change=False, database="db1")
    assert turn_from_line(turn_to_line(turn)) == turn
    assert "\n" not in turn_to_line(_turn(1, "two\nlines"))


def test_replayed_turns_are_deleted_and_a_failed_replay_keeps_them(tmp_path: Path) -> None:
    spool = TurnSpool(tmp_path / "spool")
    for n in range(3):
        assert spool.append(_turn(n))
    assert spool.pending() == 3
    assert oct((tmp_path / "spool" / "turns.jsonl").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(RuntimeError), spool.replaying() as batch:
        assert batch is not None and [t.inbound.dedupe_key for t in batch] == [
            "key0", "key1", "key2"]
        spool.append(_turn(3))  # a webhook spools meanwhile: into a fresh file
        raise RuntimeError("the database failed again")
    assert spool.pending() == 4  # nothing lost
    with spool.replaying() as batch:
        assert batch is not None and len(batch) == 4  # the old batch first, then the new turn
        assert [t.inbound.dedupe_key for t in batch][-1] == "key3"
    assert spool.pending() == 0
    with spool.replaying() as batch:
        assert batch is None


def test_one_replayer_at_a_time(tmp_path: Path) -> None:
    first, second = TurnSpool(tmp_path), TurnSpool(tmp_path)  # two worker processes
    first.append(_turn(1))
    with first.replaying() as batch:
        assert batch is not None
        with second.replaying() as other:
            assert other is None


def test_a_line_cut_short_by_a_crash_is_set_aside(tmp_path: Path) -> None:
    spool = TurnSpool(tmp_path)
    spool.append(_turn(1))
    with open(tmp_path / "turns.jsonl", "a") as file:
        file.write('{"v":1,"inbound":{"chan')  # the process died mid-write
    with spool.replaying() as batch:
        assert batch is not None and len(batch) == 1
    assert (tmp_path / "turns.failed.jsonl").read_text().startswith('{"v":1,"inbound":{"chan')


def test_an_unwritable_spool_keeps_turns_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the spool directory should be")
    spool = TurnSpool(blocker / "spool")  # ENOTDIR: even root cannot write there
    assert spool.append(_turn(1)) is False
    assert spool.pending() == 1
    with spool.replaying() as batch:
        assert batch is not None and [t.inbound.dedupe_key for t in batch] == ["key1"]
    assert spool.pending() == 0


def _append_many(directory: str, start: int) -> None:
    spool = TurnSpool(directory)
    for n in range(start, start + 100):
        spool.append(_turn(n, "x" * (n % 7) * 300))  # lines of different lengths


def test_appends_from_several_processes_stay_whole_lines(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(str(tmp_path), n * 1000))
               for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    with TurnSpool(tmp_path).replaying() as batch:
        assert batch is not None and len(batch) == 400
        assert len({t.inbound.dedupe_key for t in batch}) == 400
    assert not (tmp_path / "turns.failed.jsonl").exists()


def test_the_opt_out_copy_is_shared_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "optouts.json"
    one, two = OptOutCopy(path), OptOutCopy(path)  # two worker processes
    one.replace({("h1", "+1555")})
    assert two.contains("h1", "+1555") and not two.contains("h1", "+1666")
    two.change("h2", "+1555", True)
    one.change("h1", "+1555", False)
    assert not two.contains("h1", "+1555") and one.contains("h2", "+1555")
    assert OptOutCopy(path).contains("h2", "+1555")  # a restarted process reads the file
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    path.write_text("{not json")
    assert one.contains("h2", "+1555")  # a broken file: keep the last good copy
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_a_change_appends_one_line_whatever_the_lists_length(tmp_path: Path) -> None:
    path = tmp_path / "optouts.json"
    one, two = OptOutCopy(path), OptOutCopy(path)
    one.replace({(f"{i:064x}", "+15550001000") for i in range(5000)})
    snapshot = path.stat()
    one.change("h9", "+1555", True)  # a STOP
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        snapshot.st_ino, snapshot.st_size, snapshot.st_mtime_ns)  # not rewritten
    assert 0 < one.journal.stat().st_size < 200
    assert two.contains("h9", "+1555") and len(two) == 5001
    two.change("h9", "+1555", False)  # a START from another worker
    assert not one.contains("h9", "+1555") and not OptOutCopy(path).contains("h9", "+1555")


def test_journal_lines_from_before_a_refresh_are_void(tmp_path: Path) -> None:
    path = tmp_path / "optouts.json"
    copy = OptOutCopy(path)
    copy.replace(set())
    copy.change("h1", "+1555", True)
    stale_line = copy.journal.read_bytes()
    copy.replace({("h2", "+1555")})  # the database's list, which lacks h1 by now
    with open(copy.journal, "ab") as journal:  # as if the truncation had come first
        journal.write(stale_line)
    fresh = OptOutCopy(path)
    assert fresh.contains("h2", "+1555") and not fresh.contains("h1", "+1555")


def test_a_journal_line_counts_once_it_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "optouts.json"
    writer, reader = OptOutCopy(path), OptOutCopy(path)
    writer.replace(set())
    writer.change("h1", "+1555", True)
    line = writer.journal.read_bytes()
    writer.journal.write_bytes(b"")
    with open(writer.journal, "ab") as journal:
        journal.write(line[:20])  # a writer part-way through its append
        journal.flush()
        assert not reader.contains("h1", "+1555")
        journal.write(line[20:])
    assert reader.contains("h1", "+1555")


def test_a_reader_between_a_refreshs_two_renames_misses_no_line(tmp_path: Path) -> None:
    path = tmp_path / "optouts.json"
    writer, reader = OptOutCopy(path), OptOutCopy(path)
    writer.replace(set())
    writer.change("h1", "+1555", True)
    old_length = writer.journal.stat().st_size
    # replace() in two steps, with the reader coming in between: it reads the new
    # snapshot and the old journal (to its end, all of it void now).
    writer._write_snapshot(set(), "2" * 32)  # as long as a uuid4().hex
    writer._generation, writer._base, writer._pairs = "2" * 32, set(), set()
    assert not reader.contains("h1", "+1555")
    writer._new_journal()
    writer.change("h2", "+1555", True)  # a line as long as the old journal
    assert writer.journal.stat().st_size == old_length
    assert reader.contains("h2", "+1555")


def test_a_journal_that_cannot_be_written_keeps_the_change_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "optouts.json"
    copy = OptOutCopy(path)
    copy.replace(set())
    copy.journal.unlink()
    copy.journal.mkdir()  # any write to it fails, as on a broken disk
    with captured("calfline.spool") as lines:
        copy.change("h1", "+1555", True)
        copy.change("h2", "+1555", True)
    assert copy.contains("h1", "+1555") and copy.contains("h2", "+1555")
    assert [r.getMessage() for r in lines.records if r.levelname == "ERROR"] == [
        "opt-out copy not writable: this process keeps it in memory"]  # once, not per change
