"""The servers the fault tests (and bench/faults.py) break: real gunicorn, two ways.

    with proxied_server(tmp) as line:     # PostgreSQL and Redis behind FaultProxy
        line.postgres.freeze(); ...; line.postgres.heal()
    with private_disk_server(tmp) as line:  # SQLite on a tmpfs only the server sees
        line.fill(); ...; line.empty()

Both use the clinics file of tests/frontdesk (the riverside clinic's alerts go to
a WebhookRecorder) and the token and hash secret of tests/channels/outage.py.
Nothing outside the test changes: the machine's PostgreSQL and Redis keep
running; the private disk exists only in the server's mount namespace.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.channels.outage import SECRET, TOKEN
from tests.databases import postgres_schema
from tests.faultproxy import FaultProxy
from tests.frontdesk.conftest import WebhookRecorder, start_webhook, write_clinics_file
from tests.servers import RunningServer, gunicorn_process

POSTGRES_PORT, REDIS_PORT = 5432, 6379
DISK_BYTES = 8 * 1024 * 1024
UNSHARE, SETPRIV = shutil.which("unshare"), shutil.which("setpriv")


@dataclass
class ProxiedLine:
    """The server under test and the paths it takes to its dependencies."""

    server: RunningServer
    postgres: FaultProxy
    redis: FaultProxy
    database_url: str  # direct, for the test's own checks
    hook: WebhookRecorder


@contextmanager
def _alert_endpoint() -> Iterator[WebhookRecorder]:
    hook, hook_server = start_webhook()
    try:
        yield hook
    finally:
        hook_server.shutdown()
        hook_server.server_close()


def _env(clinics: Path) -> dict[str, str]:
    return {"TWILIO_AUTH_TOKEN": TOKEN, "CALFLINE_HASH_SECRET": SECRET,
            "CALFLINE_CLINICS_FILE": str(clinics), "CALFLINE_ESCALATION_BACKOFF": "0.2",
            "CALFLINE_SECRET_KEY": "fault-test-secret-key"}


@contextmanager
def proxied_server(tmp: Path) -> Iterator[ProxiedLine]:
    """gunicorn (2 workers) on a fresh PostgreSQL schema and Redis, each through a proxy."""
    with _alert_endpoint() as hook, postgres_schema() as url, \
            FaultProxy(POSTGRES_PORT) as postgres, FaultProxy(REDIS_PORT) as redis:
        clinics = write_clinics_file(tmp / "clinics.yaml", hook.url)
        via_proxy = make_url(url).set(port=postgres.port).render_as_string(hide_password=False)
        env = {**_env(clinics), "DATABASE_URL": via_proxy,
               "CALFLINE_RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{redis.port}/0"}
        with gunicorn_process(env, workers=2) as server:
            yield ProxiedLine(server, postgres, redis, url, hook)


def namespaces_work(directory: Path) -> bool:
    """True if this machine lets us mount a tmpfs in a user and mount namespace."""
    if not (UNSHARE and SETPRIV):
        return False
    probe = subprocess.run(
        [UNSHARE, "-Urm", "sh", "-c", f'mount -t tmpfs -o size=1m tmpfs "{directory}"'],
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



@contextmanager
def private_disk_server(tmp: Path) -> Iterator[DiskLine]:
    """gunicorn (2 workers) with its SQLite database on a DISK_BYTES tmpfs of its own.

    It runs in its own user and mount namespaces (`unshare -Urm`: no root needed
    where unprivileged user namespaces are on, as on Debian and Ubuntu), as a root
    without the capabilities that ignore file permissions (setpriv), so a file
    made read-only is read-only to it. The spool is on the ordinary disk, as README
    "When things fail" advises. Call namespaces_work() first.
    """
    mount_point = tmp / "data"
    mount_point.mkdir()
    snapshots = tmp / "snapshots"
    snapshots.mkdir()
    with _alert_endpoint() as hook:
        clinics = write_clinics_file(tmp / "clinics.yaml", hook.url)
        # The server's own tmpfs over `data`, then gunicorn ("$@").
        prefix = [str(UNSHARE), "-Urm", "sh", "-c",
                  f'mount -t tmpfs -o size={DISK_BYTES} tmpfs "{mount_point}" && exec '
                  f'{SETPRIV} --bounding-set=-dac_override,-dac_read_search,-fowner -- "$@"',
                  "sh"]
        env = {**_env(clinics), "DATABASE_URL": f"sqlite:///{mount_point / 'calfline.sqlite3'}",
               "CALFLINE_SPOOL_DIR": str(tmp / "spool")}
        with gunicorn_process(env, workers=2, prefix=prefix) as server:
            disk = Path(f"/proc/{server.process.pid}/root") / mount_point.relative_to("/")
            assert (disk / "calfline.sqlite3").exists()  # the test sees the server's disk
            assert not (mount_point / "calfline.sqlite3").exists()  # and nobody else does
            yield DiskLine(server, disk, mount_point, hook, snapshots)
