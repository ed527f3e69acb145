"""Never silent: PostgreSQL or Redis refused, dropped or frozen under 20 signed texts a second.

A real gunicorn (2 sync workers, as deployed) reaches PostgreSQL and Redis through a
FaultProxy this test owns (tests/channels/fault_servers.py); the machine's
services are never touched. Each scenario breaks one path while signed webhooks
arrive, heals it, and checks what tests/channels/outage.py lists: every webhook
answered with TwiML within the budget; after recovery one record per MessageSid,
one alert per red flag, the opt-outs right, one warning per outage, no traceback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.channels.fault_servers import ProxiedLine, proxied_server
from tests.channels.outage import readyz, run_outage, wait_until_ready


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxiedLine]:
    with proxied_server(tmp_path_factory.mktemp("faults")) as proxied:
        yield proxied


@pytest.mark.parametrize(("dependency", "fault"), [
    ("postgres", "refuse"), ("postgres", "drop"), ("postgres", "freeze"),
    ("redis", "refuse"), ("redis", "freeze"),
])
def test_every_text_is_answered_in_time_and_recorded_once(line: ProxiedLine, dependency: str,
                                                          fault: str) -> None:
    proxy = line.postgres if dependency == "postgres" else line.redis
    figures = run_outage(line.server, lambda: line.database_url, line.hook,
                         getattr(proxy, fault), proxy.heal,
                         "database" if dependency == "postgres" else "Redis")
    assert figures.answered == figures.webhooks
    print(f"{dependency} {fault}: {figures}")  # pytest -s shows the figures


def test_readyz_answers_within_a_second_while_postgresql_is_frozen(line: ProxiedLine) -> None:
    line.postgres.freeze()
    try:
        started = time.monotonic()
        status, body = readyz(line.server.base)
        elapsed = time.monotonic() - started
    finally:
        line.postgres.heal()
    assert status == 503 and elapsed < 1.0
    assert body["checks"]["database"]["ok"] is False  # type: ignore[index]
    assert str(line.postgres.port) not in json.dumps(body)  # where the database is stays private
    wait_until_ready(line.server.base)
