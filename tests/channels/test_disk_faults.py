"""Never silent: the SQLite disk full, then read-only, under 20 signed texts a second.

The server (gunicorn, 2 workers) runs in its own user and mount namespaces
(`unshare -Urm`, no root needed where unprivileged user namespaces are on, as on
Debian and Ubuntu) with its database on a small tmpfs that only it sees; the
spool is on the ordinary disk, as README "When things fail" advises. The test
fills that tmpfs through /proc/<pid>/root (a real ENOSPC), then takes write
permission from the database and restarts the workers (the server runs as a root
without CAP_DAC_OVERRIDE, so permissions bind it), then gives it back, and checks
what tests/channels/outage.py lists.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.channels.outage import SECRET, TOKEN, run_outage
from tests.frontdesk.conftest import WebhookRecorder, start_webhook, write_clinics_file
from tests.servers import RunningServer, gunicorn_process

DISK_BYTES = 8 * 1024 * 1024
UNSHARE, SETPRIV = shutil.which("unshare"), shutil.which("setpriv")


def _namespaces_work(tmp: Path) -> bool:
    if not (UNSHARE and SETPRIV):
        return False
    probe = subprocess.run(
        [UNSHARE, "-Urm", "sh", "-c", f'mount -t tmpfs -o size=1m tmpfs "{tmp}"'],
        capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


@dataclass
class DiskLine:
    """The server, its private disk as the test sees it, and the clinic's alert endpoint."""

    server: RunningServer
    disk: Path  # /proc/<pid>/root/<mount point>: the tmpfs as the server sees it
    mount_point: Path
    hook: WebhookRecorder

    snapshots: Path

    def database_url(self) -> str:
        """A copy of the server's database, to read: SQLite resolves /proc/<pid>/root to
        "/", so it cannot open the file through it."""
        copy = self.snapshots / f"copy{len(list(self.snapshots.iterdir()))}"
        copy.mkdir()
        for name in ("calfline.sqlite3", "calfline.sqlite3-wal"):
            if (self.disk / name).exists():
                shutil.copyfile(self.disk / name, copy / name)
        return f"sqlite:///{copy / 'calfline.sqlite3'}"

    def fill(self) -> None:
        """Write a file until the disk is full (ENOSPC)."""
        chunk = b"\0" * 4096
        fd = os.open(self.disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, chunk):
                pass
        except OSError:  # ENOSPC
            pass
        finally:
            os.close(fd)
        assert os.statvfs(self.disk).f_bavail == 0

    def empty(self) -> None:
        (self.disk / "filler").unlink()

    def read_only(self) -> None:
        """Take write permission from the database, its WAL files and directory, and
        restart the workers: a file open for writing stays writable (and Linux refuses a
        read-only remount while one is), so this is the restart the issue saw fail."""
        for path in self._files():
            path.chmod(0o444)
        self.disk.chmod(0o555)
        self._restart_workers()

    def writable(self) -> None:
        self.disk.chmod(0o755)
        for path in self._files():
            path.chmod(0o644)

    def _files(self) -> list[Path]:
        names = ("calfline.sqlite3", "calfline.sqlite3-wal", "calfline.sqlite3-shm")
        return [self.disk / name for name in names if (self.disk / name).exists()]

    def _workers(self) -> set[int]:
        pid = self.server.process.pid
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}

    def _restart_workers(self) -> None:
        old = self._workers()
        for pid in old:
            os.kill(pid, signal.SIGTERM)  # our own server's workers; the master forks new ones
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            current = self._workers()
            if len(current) == len(old) and not current & old:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("gunicorn did not replace its workers")
        for _ in range(20):  # each new worker answers (and so has started its threads)
            with urllib.request.urlopen(self.server.base + "/healthz", timeout=10) as answer:
                assert answer.status == 200


@pytest.fixture(scope="module")
def disk_line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DiskLine]:
    tmp = tmp_path_factory.mktemp("disk")
    mount_point = tmp / "data"
    mount_point.mkdir()
    if not _namespaces_work(mount_point):
        pytest.skip("needs unshare -Urm (user and mount namespaces) and setpriv to give the "
                    "server a small disk of its own")
    hook, hook_server = start_webhook()
    clinics = write_clinics_file(tmp / "clinics.yaml", hook.url)
    # The server's own tmpfs over `data`, then gunicorn ("$@") as a root without the
    # capabilities that ignore file permissions, so a read-only file is read-only to it.
    prefix = [str(UNSHARE), "-Urm", "sh", "-c",
              f'mount -t tmpfs -o size={DISK_BYTES} tmpfs "{mount_point}" && exec '
              f'{SETPRIV} --bounding-set=-dac_override,-dac_read_search,-fowner -- "$@"', "sh"]
    env = {"DATABASE_URL": f"sqlite:///{mount_point / 'calfline.sqlite3'}",
           "CALFLINE_SPOOL_DIR": str(tmp / "spool"), "TWILIO_AUTH_TOKEN": TOKEN,
           "CALFLINE_HASH_SECRET": SECRET, "CALFLINE_CLINICS_FILE": str(clinics),
           "CALFLINE_ESCALATION_BACKOFF": "0.2", "CALFLINE_SECRET_KEY": "disk-test-key"}
    try:
        with gunicorn_process(env, workers=2, prefix=prefix) as server:
            disk = Path(f"/proc/{server.process.pid}/root") / mount_point.relative_to("/")
            assert (disk / "calfline.sqlite3").exists()  # the test sees the server's disk
            assert not (mount_point / "calfline.sqlite3").exists()  # and nobody else does
            snapshots = tmp / "snapshots"
            snapshots.mkdir()
            yield DiskLine(server, disk, mount_point, hook, snapshots)
    finally:
        hook_server.shutdown()
        hook_server.server_close()


def test_a_full_disk(disk_line: DiskLine) -> None:
    figures = run_outage(disk_line.server, disk_line.database_url, disk_line.hook,
                         disk_line.fill, disk_line.empty, "database")
    assert figures.answered == figures.webhooks
    print(f"sqlite disk full: {figures}")


def test_a_read_only_disk(disk_line: DiskLine) -> None:
    figures = run_outage(disk_line.server, disk_line.database_url, disk_line.hook,
                         disk_line.read_only, disk_line.writable, "database")
    assert figures.answered == figures.webhooks
    print(f"sqlite read-only: {figures}")
