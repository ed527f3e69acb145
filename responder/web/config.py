"""Configuration: environment variables with safe defaults, read once at start-up."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from responder.dialogue.respond import Responder
from responder.errors import ConfigError
from responder.nlu.matcher import Thresholds

DEFAULT_INTENTS_DIR = Path(__file__).resolve().parents[2] / "intents"


def _float(value: str) -> float:
    return float(value)


def _int(value: str) -> int:
    return int(value)


def _str(value: str) -> str:
    return value


def _languages(value: str) -> str:
    """A comma-separated list of en/es, the default first: 'es,en'."""
    languages = [v.strip() for v in value.split(",") if v.strip()]
    if not languages or not set(languages) <= {"en", "es"} or len(set(languages)) < len(languages):
        raise ValueError("must list en and/or es, the default first, e.g. en,es")
    return ",".join(languages)


# name -> (environment variable, parser, default)
SETTINGS: dict[str, tuple[str, Callable[[str], Any], Any]] = {
    "INTENTS_DIR": ("CALFLINE_INTENTS_DIR", _str, str(DEFAULT_INTENTS_DIR)),
    # The fitted model (`calfline train`); empty is intents/.model.npz beside the intents.
    "MODEL_PATH": ("CALFLINE_MODEL_PATH", _str, ""),
    # Matching thresholds over calibrated probabilities (responder/nlu/matcher.py, README
    # "Matching"): red-flag probability for the urgent reply and for the check question.
    "URGENT_THRESHOLD": ("CALFLINE_URGENT_THRESHOLD", _float, Thresholds.urgent),
    "CHECK_THRESHOLD": ("CALFLINE_CHECK_THRESHOLD", _float, Thresholds.check),
    "TEXT_CHECK_THRESHOLD": ("CALFLINE_TEXT_CHECK_THRESHOLD", _float, Thresholds.text_check),
    "LEARNED_URGENT_THRESHOLD": ("CALFLINE_LEARNED_URGENT_THRESHOLD", _float,
                                 Thresholds.learned_urgent),
    "TEXT_URGENT_THRESHOLD": ("CALFLINE_TEXT_URGENT_THRESHOLD", _float, Thresholds.text_urgent),
    "ASKED_URGENT_THRESHOLD": ("CALFLINE_ASKED_URGENT_THRESHOLD", _float,
                               Thresholds.asked_urgent),
    "FALLBACK_THRESHOLD": ("CALFLINE_FALLBACK_THRESHOLD", _float, Thresholds.fallback),
    "AMBIGUITY_MARGIN": ("CALFLINE_AMBIGUITY_MARGIN", _float, Thresholds.ambiguity),
    "CLINIC_NAME": ("CALFLINE_CLINIC_NAME", _str, "CalfLine"),
    # Empty: the templates' own neutral words, in the reply's language (_system.yaml).
    "CLINIC_PHONE": ("CALFLINE_CLINIC_PHONE", _str, ""),
    "EMERGENCY_NUMBER": ("CALFLINE_EMERGENCY_NUMBER", _str, "911"),
    "MAX_CONTENT_LENGTH": ("CALFLINE_MAX_BODY_BYTES", _int, 64 * 1024),
    # Voice calls (responder/channels/voice.py, checked by call_flow.call_rules at start-up).
    "VOICE": ("CALFLINE_VOICE", _str, "Polly.Joanna"),
    "VOICE_LANGUAGE": ("CALFLINE_VOICE_LANGUAGE", _str, "en-US"),
    # The languages a number without a clinic profile offers, its default first: "es,en"
    # greets callers in Spanish and offers English on key 9. A message in a language the
    # intents have is answered in it whatever this says.
    "LANGUAGES": ("CALFLINE_LANGUAGES", _languages, "en"),
    # A Spanish caller's voice; it must speak VOICE_ES_LANGUAGE or Twilio fails the call.
    "VOICE_ES": ("CALFLINE_VOICE_ES", _str, "Polly.Lupe"),
    "VOICE_ES_LANGUAGE": ("CALFLINE_VOICE_ES_LANGUAGE", _str, "es-US"),
    "VOICE_SPEECH_MODEL": ("CALFLINE_VOICE_SPEECH_MODEL", _str, ""),
    "VOICE_MAX_TURNS": ("CALFLINE_VOICE_MAX_TURNS", _int, 6),
    "VOICE_MIN_CONFIDENCE": ("CALFLINE_VOICE_MIN_CONFIDENCE", _float, 0.2),
    "ESCALATION_PHONE": ("CALFLINE_ESCALATION_PHONE", _str, ""),
    # Clinic profiles (responder/frontdesk/clinics.py); empty means no clinics, neutral defaults.
    "CLINICS_FILE": ("CALFLINE_CLINICS_FILE", _str, ""),
    # Signs the staff console's session cookie; empty gets a dev key and a warning.
    "SECRET_KEY": ("CALFLINE_SECRET_KEY", _str, ""),
    # Escalations (responder/frontdesk/escalation.py): "thread" delivers from each web process;
    # "off" leaves it to `calfline escalations`. Backoff doubles from this many seconds.
    "ESCALATION_WORKER": ("CALFLINE_ESCALATION_WORKER", _str, "thread"),
    "ESCALATION_BACKOFF": ("CALFLINE_ESCALATION_BACKOFF", _float, 5.0),
    "ESCALATION_MAX_ATTEMPTS": ("CALFLINE_ESCALATION_MAX_ATTEMPTS", _int, 10),
    # Front desk workflow (responder/frontdesk/takeover.py, inbox.py): a conversation staff
    # took over goes back to the line after this many minutes without a staff reply; an
    # urgent inbox item nobody acknowledged is re-sent by the other alert route after this.
    "TAKEOVER_MINUTES": ("CALFLINE_TAKEOVER_MINUTES", _float, 30.0),
    "ACK_MINUTES": ("CALFLINE_ACK_MINUTES", _float, 10.0),
    # Twilio REST API for escalation SMS and staff replies (the auth token is TWILIO_AUTH_TOKEN);
    # their status callbacks go to CALFLINE_PUBLIC_BASE_URL + /twilio/status.
    "TWILIO_ACCOUNT_SID": ("TWILIO_ACCOUNT_SID", _str, ""),
    "TWILIO_API_URL": ("CALFLINE_TWILIO_API_URL", _str, "https://api.twilio.com"),
    "LOG_LEVEL": ("CALFLINE_LOG_LEVEL", _str, "INFO"),
    # Who writes each request's JSON line (responder/web/logging_setup.py): "app", or
    # "server" when the WSGI server's access log does (deploy/gunicorn.conf.py sets it).
    "REQUEST_LOG": ("CALFLINE_REQUEST_LOG", _str, "app"),
    # Webhook signatures (responder/channels/signatures.py): empty token answers loopback only.
    "TWILIO_AUTH_TOKEN": ("TWILIO_AUTH_TOKEN", _str, ""),
    "PUBLIC_BASE_URL": ("CALFLINE_PUBLIC_BASE_URL", _str, ""),
    "TRUST_PROXY": ("CALFLINE_TRUST_PROXY", _int, 0),
    # Conversation store (responder/store/): empty URL is instance/calfline.sqlite3.
    "DATABASE_URL": ("DATABASE_URL", _str, ""),
    "HASH_SECRET": ("CALFLINE_HASH_SECRET", _str, ""),
    "CONTEXT_MINUTES": ("CALFLINE_CONTEXT_MINUTES", _float, 30.0),
    # Days `calfline purge` keeps audit rows (responder/store/audit.py), whatever
    # --older-than says: six years by default, HIPAA's retention for such records
    # (45 CFR 164.316(b)(2)(i)). At least 1.
    "AUDIT_RETENTION_DAYS": ("CALFLINE_AUDIT_RETENTION_DAYS", _float, 2190.0),
    # Time limits (README "When things fail"): a webhook answers within WEBHOOK_BUDGET
    # seconds whatever its dependencies do (Twilio gives up at 15 s, error 11205); it waits
    # at most STORE_TIMEOUT for the database and REDIS_TIMEOUT per Redis call, then
    # answers without them. Turns the database missed wait in SPOOL_DIR (empty:
    # instance/spool) until it is back.
    "WEBHOOK_BUDGET": ("CALFLINE_WEBHOOK_BUDGET", _float, 5.0),
    "STORE_TIMEOUT": ("CALFLINE_STORE_TIMEOUT", _float, 1.0),
    "REDIS_TIMEOUT": ("CALFLINE_REDIS_TIMEOUT", _float, 0.5),
    "SPOOL_DIR": ("CALFLINE_SPOOL_DIR", _str, ""),
    # Rate limits (responder/channels/ratelimit.py), in flask-limiter's notation.
    "RATELIMIT_PER_SENDER": ("CALFLINE_RATELIMIT_PER_SENDER", _str, "30/minute"),
    "RATELIMIT_PER_IP": ("CALFLINE_RATELIMIT_PER_IP", _str, "300/minute"),
    "RATELIMIT_STORAGE_URI": ("CALFLINE_RATELIMIT_STORAGE_URI", _str, "memory://"),
}


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read every setting from the environment, falling back to its default."""
    env = os.environ if environ is None else environ
    config: dict[str, Any] = {}
    for name, (variable, parse, default) in SETTINGS.items():
        raw = env.get(variable)
        if raw is None or raw == "":
            config[name] = default
            continue
        try:
            config[name] = parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{variable}={raw!r}: {exc}") from exc
    return config


def build_responder(config: Mapping[str, Any]) -> Responder:
    """Load intents/ and its fitted model with the configured thresholds."""
    thresholds = Thresholds(
        fallback=float(config["FALLBACK_THRESHOLD"]),
        ambiguity=float(config["AMBIGUITY_MARGIN"]),
        urgent=float(config["URGENT_THRESHOLD"]),
        check=float(config["CHECK_THRESHOLD"]),
        text_check=float(config["TEXT_CHECK_THRESHOLD"]),
        learned_urgent=float(config["LEARNED_URGENT_THRESHOLD"]),
        text_urgent=float(config["TEXT_URGENT_THRESHOLD"]),
        asked_urgent=float(config["ASKED_URGENT_THRESHOLD"]),
    )
    if not 0.0 <= thresholds.check <= thresholds.urgent <= 1.0:
        raise ConfigError("CALFLINE_CHECK_THRESHOLD must be at most CALFLINE_URGENT_THRESHOLD, "
                          "both between 0 and 1")
    if not 0.0 <= thresholds.text_check <= 1.0:
        raise ConfigError("CALFLINE_TEXT_CHECK_THRESHOLD must be between 0 and 1 "
                          "(1 turns the words-only second opinion off)")
    return Responder.from_directory(config["INTENTS_DIR"], thresholds,
                                    config.get("MODEL_PATH") or None)
