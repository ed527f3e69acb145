"""Time limits that cannot hold stop start-up, with the setting named."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from responder.errors import ConfigError


@pytest.mark.parametrize(("settings", "named"), [
    ({"WEBHOOK_BUDGET": 15.0}, "CALFLINE_WEBHOOK_BUDGET"),  # Twilio gives up at 15 s
    ({"WEBHOOK_BUDGET": 0.0}, "CALFLINE_WEBHOOK_BUDGET"),
    ({"STORE_TIMEOUT": 4.8}, "CALFLINE_STORE_TIMEOUT"),  # no time left to answer
    ({"REDIS_TIMEOUT": 2.5}, "CALFLINE_REDIS_TIMEOUT"),
    ({"STORE_TIMEOUT": -1.0}, "CALFLINE_STORE_TIMEOUT"),
])
def test_impossible_time_limits_stop_start_up(make_app: Callable[..., Flask],
                                              settings: dict[str, float], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        make_app(**settings)


def test_the_shipped_limits_fit(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    config = app.config
    assert config["STORE_TIMEOUT"] + 2 * config["REDIS_TIMEOUT"] < config["WEBHOOK_BUDGET"] <= 14


def test_store_work_runs_in_the_webhooks_thread_but_for_a_sqlite_file_apart_from_the_spool(
    make_app: Callable[..., Flask], database_url: str, tmp_path: Path
) -> None:
    # A SQLite file inline only where a stuck disk would hold the spool's answer too;
    # PostgreSQL inline under the guard's watchdog (guard.py says why).
    beside = make_app()
    assert beside.extensions["calfline_store"].guard.inline is True
    other_disk = Path("/dev/shm")
    if os.stat(other_disk).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system here for the spool")
    with tempfile.TemporaryDirectory(dir=other_disk) as spool:
        apart = make_app(SPOOL_DIR=str(Path(spool) / "spool"))
        sqlite = database_url.startswith("sqlite")
        assert apart.extensions["calfline_store"].guard.inline is not sqlite
