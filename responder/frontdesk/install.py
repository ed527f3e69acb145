"""Wire the clinic front desk into the app: profiles, JSON API, console, admin pages, escalation."""

from __future__ import annotations

import secrets

from flask import Flask

from responder.frontdesk.clinics import load_clinics

# The console's session cookie must not be forgeable; a random per-process key is
# safe but logs everyone out on restart and breaks with several workers.
_DEV_KEY_WARNING = (
    "CALFLINE_SECRET_KEY is not set: using a random key for this process only; "
    "console sessions end on restart and do not work across workers"
)


def install_frontdesk(app: Flask) -> None:
    """Load clinic profiles and register the API and console on `app`."""
    app.extensions["calfline_clinics"] = load_clinics(app.config.get("CLINICS_FILE"))
    if not app.config.get("SECRET_KEY"):
        app.logger.warning(_DEV_KEY_WARNING)
        app.config["SECRET_KEY"] = secrets.token_hex(32)

    from responder.frontdesk import api, console, console_workflow  # noqa: F401 - its routes

    api.load_openapi(app)
    app.register_blueprint(api.bp)
    console.configure_sessions(app)
    app.register_blueprint(console.bp)
    from responder.frontdesk import admin, dashboard  # noqa: F401 - dashboard adds admin's routes

    app.register_blueprint(admin.bp)
    from responder.frontdesk.escalation import install_escalation

    install_escalation(app)
