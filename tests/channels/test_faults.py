"""Never silent: PostgreSQL or Redis refused, dropped or frozen under 20 signed texts a second.

A real gunicorn (2 workers, 4 threads) reaches PostgreSQL and Redis through a
FaultProxy this test owns (tests/faultproxy.py); the machine's services are
never touched. Each scenario breaks one path while signed webhooks arrive, heals
it, and checks what tests/channels/outage.py lists: every webhook answered with
TwiML within the budget; after recovery one record per MessageSid, one alert per
red flag, the opt-outs right, one warning per outage and no traceback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import make_url

from tests.channels.outage import SECRET, TOKEN, readyz, run_outage, wait_until_ready
from tests.databases import postgres_schema
from tests.faultproxy import FaultProxy
from tests.frontdesk.conftest import WebhookRecorder, start_webhook, write_clinics_file
from tests.servers import RunningServer, gunicorn_process

REDIS_PORT = 6379


@dataclass
class Line:
    """The server under test and the paths it takes to its dependencies."""

    server: RunningServer
    postgres: FaultProxy
    redis: FaultProxy
    database_url: str  # direct, for the test's own checks
    hook: WebhookRecorder


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Line]:
    tmp = tmp_path_factory.mktemp("faults")
    hook, hook_server = start_webhook()
    clinics = write_clinics_file(tmp / "clinics.yaml", hook.url)
    with postgres_schema() as url, FaultProxy(5432) as postgres, \
            FaultProxy(REDIS_PORT) as redis:
        via_proxy = make_url(url).set(port=postgres.port).render_as_string(hide_password=False)
        env = {"DATABASE_URL": via_proxy, "TWILIO_AUTH_TOKEN": TOKEN,
               "CALFLINE_HASH_SECRET": SECRET, "CALFLINE_CLINICS_FILE": str(clinics),
               "CALFLINE_ESCALATION_BACKOFF": "0.2",
               "CALFLINE_RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{redis.port}/0",
               "CALFLINE_SECRET_KEY": "fault-test-secret-key"}
        try:
            with gunicorn_process(env, workers=2) as server:
                yield Line(server, postgres, redis, url, hook)
        finally:
            hook_server.shutdown()
            hook_server.server_close()


@pytest.mark.parametrize(("dependency", "fault"), [
    ("postgres", "refuse"), ("postgres", "drop"), ("postgres", "freeze"),
    ("redis", "refuse"), ("redis", "freeze"),
])
def test_every_text_is_answered_in_time_and_recorded_once(line: Line, dependency: str,
                                                          fault: str) -> None:
    proxy = line.postgres if dependency == "postgres" else line.redis
    figures = run_outage(line.server, lambda: line.database_url, line.hook, getattr(proxy, fault),
                         proxy.heal, "database" if dependency == "postgres" else "Redis")
    assert figures.answered == figures.webhooks
    print(f"{dependency} {fault}: {figures}")  # pytest -s shows the figures


def test_readyz_answers_within_a_second_while_postgresql_is_frozen(line: Line) -> None:
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
