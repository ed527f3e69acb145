"""Never silent: the SQLite disk full, then read-only, under 20 signed texts a second.

The server runs with its database on a small tmpfs of its own, in its own user
and mount namespaces (tests/channels/fault_servers.py). The test fills that disk
through /proc/<pid>/root (a real ENOSPC), then takes write permission from the
database and restarts the workers (the issue's read-only file after a restart),
gives it back, and checks what tests/channels/outage.py lists.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.channels.fault_servers import DiskLine, namespaces_work, private_disk_server
from tests.channels.outage import run_outage


@pytest.fixture(scope="module")
def disk_line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DiskLine]:
    tmp = tmp_path_factory.mktemp("disk")
    if not namespaces_work(tmp_path_factory.mktemp("probe")):
        pytest.skip("needs unshare -Urm (user and mount namespaces) and setpriv to give the "
                    "server a small disk of its own")
    with private_disk_server(tmp) as line:
        yield line


def test_a_full_disk(disk_line: DiskLine) -> None:
    figures = run_outage(disk_line.server, disk_line.database_url, disk_line.hook,
                         disk_line.fill, disk_line.empty, "database")
    assert figures.answered == figures.webhooks
    print(f"sqlite disk full: {figures}")


def test_a_read_only_database_after_a_worker_restart(disk_line: DiskLine) -> None:
    figures = run_outage(disk_line.server, disk_line.database_url, disk_line.hook,
                         disk_line.read_only, disk_line.writable, "database")
    assert figures.answered == figures.webhooks
    print(f"sqlite read-only: {figures}")
