"""Time limits that cannot hold stop start-up, with the setting named."""

from __future__ import annotations

from collections.abc import Callable

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
