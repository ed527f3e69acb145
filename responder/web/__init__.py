"""The web app's plumbing: settings, request logs and health checks.

`from_environment()` reads every setting once (config.py); JSON request logs
(logging_setup.py); /healthz and /readyz (health.py). `create_app` itself is
in responder/__init__.py, the one place that wires every layer into Flask.
"""

from responder.web.config import SETTINGS, from_environment
from responder.web.logging_setup import (
    JsonFormatter,
    configure_logging,
    install_request_logging,
    redact_path,
)

__all__ = [
    "SETTINGS",
    "JsonFormatter",
    "configure_logging",
    "from_environment",
    "install_request_logging",
    "redact_path",
]
