"""Clinic profiles: who owns which Twilio number, and how to reach and sign in to them.

Loaded once from the YAML file named by CALFLINE_CLINICS_FILE and validated at
start-up, so a typo stops the service with the file and field named instead of
a patient hearing the wrong clinic's name. Secrets are stored hashed only.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from flask import Flask
from werkzeug.security import check_password_hash, generate_password_hash

from responder.errors import ClinicDataError
from responder.frontdesk.hours import HoursError, OpeningHours, callback_when, parse_opening_hours
from responder.gsm import non_gsm7_chars
from responder.nlu.catalog import LONGEST_VARIABLES

__all__ = [
    "ADMIN", "ROLES", "STAFF", "Clinic", "ClinicDirectory", "StaffUser", "clinic_for_number",
    "hash_api_key", "load_clinics", "new_api_key", "variables_for_clinic", "variables_for_number",
]

# E.164: a plus, then at most 15 digits (ITU-T E.164 section 6.1); Twilio's `To` is E.164.
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_API_KEY_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
# Templates are checked at start-up against these worst-case lengths (catalog.py),
# so a longer name or phone could push an SMS past two segments.
MAX_NAME_CHARS = len(LONGEST_VARIABLES["clinic_name"])
MAX_PHONE_CHARS = len(LONGEST_VARIABLES["clinic_phone"])
_FIELDS = frozenset({
    "id", "name", "numbers", "phone", "hours", "escalation", "escalate_chronic_pain",
    "api_keys", "staff", "languages",
})
# The languages intents/ has replies in (responder/nlu/catalog.py LANGUAGES).
KNOWN_LANGUAGES = ("en", "es")


# Roles of a staff login: admins also see the clinic's audit trail and dashboard.
STAFF = "staff"
ADMIN = "admin"
ROLES = (STAFF, ADMIN)
_STAFF_FIELDS = frozenset({"username", "password_hash", "role"})


@dataclass(frozen=True)
class StaffUser:
    """One front-desk login; the password is kept only as a werkzeug hash."""

    username: str
    password_hash: str
    role: str = STAFF

    @property
    def is_admin(self) -> bool:
        """True for a clinic admin (audit trail, dashboard)."""
        return self.role == ADMIN

    def check_password(self, password: str) -> bool:
        """Return True when `password` matches the stored hash."""
        return check_password_hash(self.password_hash, password)


@dataclass(frozen=True)
class Clinic:
    """One clinic's profile."""

    id: str
    name: str
    numbers: tuple[str, ...]
    phone: str
    hours: str = ""
    escalation_phone: str | None = None
    escalation_webhook_url: str | None = None
    escalation_webhook_secret: str | None = field(default=None, repr=False)
    escalate_chronic_pain: bool = False
    api_key_hashes: tuple[str, ...] = field(default=(), repr=False)
    staff: tuple[StaffUser, ...] = field(default=(), repr=False)
    # The languages its numbers offer, the default first; empty: CALFLINE_LANGUAGES.
    languages: tuple[str, ...] = ()
    opening_hours: OpeningHours | None = None
    # With both alert routes: the first alert goes by this one only, a re-send by the other.
    escalation_first: str | None = None

    def variables(self) -> dict[str, str]:
        """Template variables this clinic's patients hear, and its numbers' languages."""
        values = {"clinic_name": self.name, "clinic_phone": self.phone}
        if self.languages:
            values["languages"] = ",".join(self.languages)
        return values

    def callback_when(self, now: datetime, language: str = "en") -> str:
        """When the clinic will call a patient back, said in a handoff reply."""
        return callback_when(self.opening_hours, self.hours, now, language)

    def open_at(self, now: datetime) -> bool:
        """True during structured opening hours (free-text hours cannot tell)."""
        return self.opening_hours is not None and self.opening_hours.closes_at(now) is not None

    def alert_routes(self) -> tuple[str, ...]:
        """The configured alert routes, "sms" and/or "webhook"."""
        return tuple(r for r, on in (("sms", self.escalation_phone),
                                     ("webhook", self.escalation_webhook_url)) if on)

    def first_alert_routes(self) -> tuple[str, ...]:
        """The routes of an alert's first notice (escalation.first picks one of two)."""
        routes = self.alert_routes()
        if self.escalation_first in routes and len(routes) > 1:
            return (self.escalation_first,)  # type: ignore[return-value]
        return routes

    def escalates(self, intent: str) -> bool:
        """Return True when a message of this intent must notify the clinic."""
        has_target = bool(self.escalation_phone or self.escalation_webhook_url)
        wanted = intent == "red_flag" or (intent == "chronic_pain" and self.escalate_chronic_pain)
        return has_target and wanted


class ClinicDirectory:
    """Every clinic, indexed by number, API key hash and staff username."""

    def __init__(self, clinics: Iterable[Clinic] = ()) -> None:
        self.clinics: dict[str, Clinic] = {c.id: c for c in clinics}
        self._by_number = {n: c for c in self.clinics.values() for n in c.numbers}
        self._by_key = {h: c for c in self.clinics.values() for h in c.api_key_hashes}
        self._staff = {s.username: (c, s) for c in self.clinics.values() for s in c.staff}

    def for_number(self, number: str | None) -> Clinic | None:
        """Return the clinic that owns a Twilio number, if any."""
        return self._by_number.get((number or "").strip())

    def for_api_key(self, key: str) -> Clinic | None:
        """Return the clinic whose API key this is; compares hashes in constant time."""
        digest = hash_api_key(key)
        found = None
        for stored, clinic in self._by_key.items():
            if hmac.compare_digest(stored, digest):
                found = clinic
        return found

    def login(self, username: str, password: str) -> Clinic | None:
        """Return the staff member's clinic when the password is right."""
        signed_in = self.sign_in(username, password)
        return signed_in[0] if signed_in else None

    def sign_in(self, username: str, password: str) -> tuple[Clinic, StaffUser] | None:
        """Return the clinic and staff entry when the password is right."""
        entry = self._staff.get(username)
        if entry is None:
            # Spend the same time as a real check so usernames cannot be probed by timing.
            check_password_hash(_dummy_hash(), password)
            return None
        return entry if entry[1].check_password(password) else None

    def staff_user(self, clinic_id: str, username: str) -> StaffUser | None:
        """Return a clinic's staff entry by username; None if not on that clinic."""
        entry = self._staff.get(username)
        return entry[1] if entry and entry[0].id == clinic_id else None

    def clinic_of(self, username: str) -> Clinic | None:
        """Return the clinic a username belongs to (for the audit of a failed sign-in)."""
        entry = self._staff.get(username)
        return entry[0] if entry else None


def new_api_key() -> str:
    """Return a fresh random API key (256 bits, URL-safe)."""
    return "cl_" + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """Hash an API key for storage.

    Keys are 256-bit random strings made by `calfline clinic-key`, so a salted slow
    hash adds nothing against guessing, and one SHA-256 lets a request find its
    clinic without trying every stored key.
    """
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


@functools.cache
def _dummy_hash() -> str:
    """A real hash to check against when the username is unknown."""
    return generate_password_hash(secrets.token_urlsafe(16))


def _text(path: Path, where: str, data: Mapping[str, Any], name: str, required: bool) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ClinicDataError(path, f"{where}.{name}", "must be a non-empty string")
    return value.strip()


def _number(path: Path, where: str, value: object) -> str:
    if not isinstance(value, str) or not _E164.match(value):
        raise ClinicDataError(path, where, f"{value!r} is not an E.164 number like +15551234567")
    return value


def _template_value(path: Path, where: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise ClinicDataError(path, where, f"{len(value)} characters; max {limit} to fit an SMS")
    bad = non_gsm7_chars(value)
    if bad:
        raise ClinicDataError(path, where, f"non-GSM-7 characters {bad!r} would split SMS")
    return value


def _escalation(path: Path, where: str, data: object) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ClinicDataError(path, where, "must be a mapping with phone and/or webhook_url")
    unknown = set(data) - {"phone", "webhook_url", "webhook_secret", "first"}
    if unknown:
        raise ClinicDataError(path, where, f"unknown fields {sorted(unknown)}")
    out: dict[str, Any] = {}
    first = data.get("first")
    if first is not None:
        if first not in {"sms", "webhook"}:
            raise ClinicDataError(path, f"{where}.first", "must be sms or webhook")
        out["escalation_first"] = first
    if data.get("phone") is not None:
        out["escalation_phone"] = _number(path, f"{where}.phone", data["phone"])
    url = data.get("webhook_url")
    if url is not None:
        parts = urlsplit(str(url))
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ClinicDataError(path, f"{where}.webhook_url", f"{url!r} is not an http(s) URL")
        secret = data.get("webhook_secret")
        if not isinstance(secret, str) or len(secret) < 16:
            raise ClinicDataError(
                path, f"{where}.webhook_secret", "required with webhook_url, 16+ characters"
            )
        out["escalation_webhook_url"] = str(url)
        out["escalation_webhook_secret"] = secret
    return out


def _hours(path: Path, where: str, data: object) -> dict[str, Any]:
    """`hours`: the old free text, or a timezone with each weekday's ranges (hours.py)."""
    if data is None:
        return {}
    if isinstance(data, str) and data.strip():
        return {"hours": data}
    if not isinstance(data, dict):
        raise ClinicDataError(path, where, "must be text, or a mapping with timezone and days")
    try:
        opening = parse_opening_hours(data)
    except HoursError as exc:
        raise ClinicDataError(path, f"{where}.{exc.field}", str(exc)) from exc
    text = data.get("text")
    if text is not None and not isinstance(text, str):
        raise ClinicDataError(path, f"{where}.text", "must be text")
    return {"hours": text or "", "opening_hours": opening}


def _staff(path: Path, where: str, data: object) -> tuple[StaffUser, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ClinicDataError(path, where, "must be a list of {username, password_hash, role}")
    users = []
    for i, entry in enumerate(data):
        here = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise ClinicDataError(path, here, "must be a mapping with username and password_hash")
        unknown = set(entry) - _STAFF_FIELDS
        if unknown:
            raise ClinicDataError(path, here, f"unknown fields {sorted(unknown)}")
        role = entry.get("role", STAFF)
        if role not in ROLES:
            raise ClinicDataError(path, f"{here}.role", f"{role!r} must be one of {list(ROLES)}")
        username = _text(path, here, entry, "username", required=True)
        hashed = _text(path, here, entry, "password_hash", required=True)
        if not hashed.startswith(("scrypt:", "pbkdf2:")):
            raise ClinicDataError(
                path, f"{here}.password_hash",
                "must be a werkzeug hash (run `calfline password-hash`), never a plain password",
            )
        users.append(StaffUser(username, hashed, role))
    return tuple(users)


def _clinic(path: Path, index: int, data: object) -> Clinic:
    where = f"clinics[{index}]"
    if not isinstance(data, dict):
        raise ClinicDataError(path, where, "must be a mapping of fields")
    unknown = set(data) - _FIELDS
    if unknown:
        raise ClinicDataError(path, where, f"unknown fields {sorted(unknown)}")
    clinic_id = _text(path, where, data, "id", required=True)
    if not _ID.match(clinic_id):
        raise ClinicDataError(path, f"{where}.id", "lowercase letters, digits, - and _ only")
    where = f"clinics[{clinic_id}]"
    numbers = data.get("numbers")
    if not isinstance(numbers, list) or not numbers:
        raise ClinicDataError(path, f"{where}.numbers", "must list the Twilio numbers it owns")
    keys = data.get("api_keys") or []
    if not isinstance(keys, list) or not all(
        isinstance(k, str) and _API_KEY_HASH.match(k) for k in keys
    ):
        raise ClinicDataError(
            path, f"{where}.api_keys",
            "must list hashes like sha256:<64 hex> (run `calfline clinic-key`), never raw keys",
        )
    flag = data.get("escalate_chronic_pain", False)
    if not isinstance(flag, bool):
        raise ClinicDataError(path, f"{where}.escalate_chronic_pain", "must be true or false")
    name = _text(path, where, data, "name", required=True)
    phone = _text(path, where, data, "phone", required=True)
    languages = data.get("languages") or []
    if not isinstance(languages, list) or not all(x in KNOWN_LANGUAGES for x in languages) \
            or len(set(languages)) != len(languages):
        raise ClinicDataError(path, f"{where}.languages",
                              f"must list some of {list(KNOWN_LANGUAGES)}, the default first")
    return Clinic(
        languages=tuple(languages),
        id=clinic_id,
        name=_template_value(path, f"{where}.name", name, MAX_NAME_CHARS),
        numbers=tuple(_number(path, f"{where}.numbers[{i}]", n) for i, n in enumerate(numbers)),
        phone=_template_value(path, f"{where}.phone", phone, MAX_PHONE_CHARS),
        **_hours(path, f"{where}.hours", data.get("hours")),
        escalate_chronic_pain=flag,
        api_key_hashes=tuple(keys),
        staff=_staff(path, f"{where}.staff", data.get("staff")),
        **_escalation(path, f"{where}.escalation", data.get("escalation")),
    )


def _check_unique(path: Path, clinics: list[Clinic]) -> None:
    seen: dict[str, str] = {}
    for clinic in clinics:
        items = [("id", clinic.id)] + [("numbers", n) for n in clinic.numbers]
        items += [("api_keys", k) for k in clinic.api_key_hashes]
        items += [("staff.username", s.username) for s in clinic.staff]
        for kind, value in items:
            key = f"{kind}:{value}"
            if key in seen:
                raise ClinicDataError(
                    path, f"clinics[{clinic.id}].{kind}",
                    f"{value!r} is already used by clinic {seen[key]!r}",
                )
            seen[key] = clinic.id


def load_clinics(path: Path | str | None) -> ClinicDirectory:
    """Read and validate the clinics file; no file configured means no clinics."""
    if not path:
        return ClinicDirectory()
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ClinicDataError(file, "(file)", f"cannot be read as YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("clinics"), list):
        raise ClinicDataError(file, "clinics", "the file must hold a `clinics:` list")
    clinics = [_clinic(file, i, entry) for i, entry in enumerate(data["clinics"])]
    _check_unique(file, clinics)
    return ClinicDirectory(clinics)


def variables_for_clinic(app: Flask, clinic: Clinic | None) -> dict[str, str]:
    """Template variables for `clinic`'s patients; None gets the neutral defaults."""
    config = app.config
    variables = {
        "clinic_name": config["CLINIC_NAME"],
        "clinic_phone": config["CLINIC_PHONE"],
        "emergency_number": config["EMERGENCY_NUMBER"],
        "languages": config["LANGUAGES"],
    }
    if clinic is not None:
        variables.update(clinic.variables())
    return variables


def clinic_for_number(app: Flask, to_number: str | None) -> Clinic | None:
    """Return the clinic that owns the Twilio number a message was sent to."""
    directory: ClinicDirectory = app.extensions["calfline_clinics"]
    return directory.for_number(to_number)


def variables_for_number(app: Flask, to_number: str | None) -> dict[str, str]:
    """Template variables for a message to `to_number`: its clinic's, or the neutral defaults."""
    return variables_for_clinic(app, clinic_for_number(app, to_number))
