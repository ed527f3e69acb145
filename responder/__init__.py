"""CalfLine: safe, reviewed answers for tight calves, over SMS, voice and a clinic API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from responder.config import from_environment
from responder.errors import CalfLineError, ConfigError, IntentDataError
from responder.matcher import Thresholds
from responder.respond import Responder

__all__ = ["CalfLineError", "ConfigError", "IntentDataError", "Responder", "create_app"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the web app: settings from the environment, then `config` on top."""
    app = Flask(__name__)
    app.config.update(from_environment())
    if config:
        app.config.update(config)
    thresholds = Thresholds(
        fallback=float(app.config["FALLBACK_THRESHOLD"]),
        ambiguity=float(app.config["AMBIGUITY_MARGIN"]),
    )
    responder = app.config.get("RESPONDER") or Responder.from_directory(
        app.config["INTENTS_DIR"], thresholds
    )
    app.extensions["calfline"] = responder
    from responder.ratelimit import install_rate_limits
    from responder.security import install_security
    from responder.store import install_store

    install_security(app)  # signature checks on every Twilio route, proxy hops
    install_rate_limits(app)
    install_store(app)  # app.extensions["calfline_store"], migrated to the newest schema

    from responder import health, sms
    from responder.logging_setup import install_request_logging

    install_request_logging(app)
    from responder.frontdesk import install_frontdesk

    install_frontdesk(app)  # clinic profiles, JSON API, staff console, escalation
    app.register_blueprint(health.bp)
    app.register_blueprint(sms.bp)
    from responder import voice

    app.register_blueprint(voice.bp)
    return app
