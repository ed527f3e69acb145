"""CalfLine: safe, reviewed answers for tight calves, over SMS, voice and a clinic API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from responder.channels import sms, status, voice
from responder.channels.fallback import check_time_limits, install_fallback
from responder.channels.ratelimit import install_rate_limits
from responder.channels.replay import install_replayer
from responder.channels.signatures import install_security
from responder.dialogue.respond import Responder
from responder.errors import CalfLineError, ConfigError, IntentDataError
from responder.frontdesk.install import install_frontdesk
from responder.store.conversation_store import install_store
from responder.web import health
from responder.web.config import build_responder, from_environment
from responder.web.form_body import FormRequest
from responder.web.json_body import BoundedJSONProvider
from responder.web.logging_setup import install_request_logging

__all__ = ["CalfLineError", "ConfigError", "IntentDataError", "Responder", "create_app"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the web app: settings from the environment, then `config` on top."""
    app = Flask(__name__)
    app.request_class = FormRequest  # a webhook's form read in one step
    app.json = BoundedJSONProvider(app)  # deeply nested request JSON is a 400, not a 500
    app.config.update(from_environment())
    if config:
        app.config.update(config)
    # Tests hand in one trained responder; everyone else loads intents/ once here.
    app.extensions["calfline"] = app.config.get("RESPONDER") or build_responder(app.config)
    check_time_limits(app.config)  # before anything connects with them
    install_security(app)  # signature checks on every Twilio route, proxy hops
    install_rate_limits(app)
    install_store(app)  # app.extensions["calfline_store"], migrated to the newest schema
    install_request_logging(app)
    install_frontdesk(app)  # clinic profiles, JSON API, staff console, escalation (needs the store)
    install_fallback(app)  # time budget, spool and opt-out copy for when the database fails
    install_replayer(app)  # records spooled turns once the database is back
    for blueprint in (health.bp, sms.bp, voice.bp, status.bp):
        app.register_blueprint(blueprint)
    return app
