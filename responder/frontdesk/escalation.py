"""Tell a clinic when a patient on its number shows a red flag, without delaying the patient.

The webhook route only writes an outbox row (responder/store/escalation_outbox.py)
in the store's database; a worker thread in each web process (or `calfline
escalations`) delivers it: an SMS through Twilio's REST API and/or a signed
POST to the clinic's webhook. Failures retry with exponential backoff; rows
survive restarts; the (message, route) unique key stops a second notice for
a re-sent webhook. Delivery is at-least-once: a receiver dedupes on the
X-CalfLine-Event header if a crash lands between its 2xx and our bookkeeping.

The same queueing puts the message in the clinic's inbox (inbox.py). Each worker
round also re-sends urgent inbox items nobody acknowledged in time (by the other
route) and ends stale take-overs (takeover.py). An alert SMS asks Twilio for status
callbacks; when it fails, delivery.py falls back to the webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from flask import Flask
from sqlalchemy import CursorResult, Engine, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from responder.frontdesk.clinics import Clinic, ClinicDirectory, clinic_for_number
from responder.frontdesk.delivery import RESEND_PREFIX, alert_failed, check_alert_failure
from responder.frontdesk.inbox import queue_inbox_item, resend_overdue
from responder.frontdesk.takeover import hand_back_expired
from responder.frontdesk.twilio_rest import SendError, send_sms
from responder.store.conversation_store import Inbound, StoredReply
from responder.store.escalation_outbox import Escalation

log = logging.getLogger("calfline.escalation")
WEBHOOK_TIMEOUT_SECONDS = 10
LEASE_SECONDS = 60  # a row claimed by a process that died is retried after this
MAX_BACKOFF_SECONDS = 3600
POLL_SECONDS = 2.0
SIGNATURE_HEADER = "X-CalfLine-Signature"
EVENT_HEADER = "X-CalfLine-Event"


class DeliveryError(Exception):
    """Raise when one notification attempt did not reach the clinic."""


def utcnow() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


def queue_escalation(app: Flask, inbound: Inbound, reply: StoredReply, reason: str = "") -> int:
    """Put this message in its clinic's inbox if it needs a person, and write the alerts
    owed for it to the outbox; return how many alerts. `reason` is the match's
    (check_yes: a YES to the check question)."""
    clinic = clinic_for_number(app, inbound.our_number)
    if clinic is None or reply.duplicate:
        return 0
    # One key per message: Twilio's (hashed) MessageSid when there is one.
    event_key = inbound.dedupe_key or uuid.uuid4().hex
    engine: Engine = app.extensions["calfline_store"].engine
    queue_inbox_item(engine, clinic, inbound, reply, event_key, reason)
    if not clinic.escalates(reply.intent or ""):
        return 0
    targets = clinic.first_alert_routes()
    now, digits = utcnow(), "".join(ch for ch in inbound.sender if ch.isdigit())
    queued = 0
    for target in targets:
        row = Escalation(
            event_key=event_key, target=target, clinic_id=clinic.id, channel=inbound.channel,
            intent=reply.intent or "", our_number=inbound.our_number[:64],
            patient_number=inbound.sender[:64] or None, patient_last4=digits[-4:],
            conversation_id=reply.conversation_id, body=inbound.body[:1600], created_at=now,
            status="pending", attempts=0, next_attempt_at=now,
        )
        try:
            with Session(engine) as session, session.begin():
                session.add(row)
            queued += 1
        except IntegrityError:
            continue  # already queued by another worker for the same message
    if queued:
        app.extensions["calfline_escalation_wakeup"].set()
    return queued


def _payload(row: Escalation, clinic: Clinic) -> dict[str, Any]:
    return {
        "event_id": row.event_key, "type": "escalation", "intent": row.intent,
        "clinic_id": clinic.id, "channel": row.channel, "our_number": row.our_number,
        "patient_number": row.patient_number, "patient_last4": row.patient_last4,
        "conversation_id": row.conversation_id, "message": row.body,
        "received_at": row.created_at.isoformat(),
        # Sent again: nobody acknowledged the first alert in the console in time.
        "resent": (row.event_key or "").startswith(RESEND_PREFIX),
    }


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", as the X-CalfLine-Signature `v1` value.

    The timestamp is signed too so a receiver can refuse replays (the scheme
    Stripe documents for its webhooks).
    """
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _post_webhook(row: Escalation, clinic: Clinic) -> None:
    body = json.dumps(_payload(row, clinic)).encode()
    timestamp = int(time.time())
    signature = sign(clinic.escalation_webhook_secret or "", timestamp, body)
    request = urllib.request.Request(
        clinic.escalation_webhook_url or "", data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "CalfLine-escalation/1",
            EVENT_HEADER: f"{row.event_key}.{row.target}",
            SIGNATURE_HEADER: f"t={timestamp},v1={signature}",
        })
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the open response
        raise DeliveryError(f"webhook answered {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"webhook unreachable: {exc}") from exc
    if not 200 <= status < 300:
        raise DeliveryError(f"webhook answered {status}")


def sms_text(row: Escalation, clinic: Clinic) -> str:
    """The alert SMS to the clinic's escalation phone."""
    what = "RED FLAG" if row.intent == "red_flag" else row.intent.replace("_", " ")
    if (row.event_key or "").startswith(RESEND_PREFIX):
        what = f"NOT ACKNOWLEDGED {what}"
    how = "called" if row.channel == "voice" else "texted"
    return (f"CalfLine {what} for {clinic.name}: {row.patient_number or row.patient_last4} "
            f"{how} {row.our_number}: \"{row.body[:200]}\" Please call them back.")


def _send_sms(row: Escalation, clinic: Clinic, config: dict[str, Any], engine: Engine) -> str:
    """Send the alert SMS (with a status callback); return its MessageSid."""
    # An alert that cannot go out now is retried with backoff anyway.
    try:
        sent = send_sms(config, engine, clinic.escalation_phone or "", row.our_number,
                        sms_text(row, clinic))
    except SendError as exc:
        raise DeliveryError(str(exc)) from exc
    return sent.sid


def _claim(engine: Engine, row_id: int, now: datetime) -> bool:
    stmt = (update(Escalation)
            .where(Escalation.id == row_id, Escalation.status == "pending",
                   or_(Escalation.claimed_until.is_(None), Escalation.claimed_until < now))
            .values(claimed_until=now + timedelta(seconds=LEASE_SECONDS)))
    with Session(engine) as session, session.begin():
        result = cast(CursorResult[Any], session.execute(stmt))
        return result.rowcount == 1


def _finish(app: Flask, row: Escalation, error: str | None, sid: str | None = None) -> None:
    engine: Engine = app.extensions["calfline_store"].engine
    config = app.config
    now = utcnow()
    values: dict[str, Any] = {"attempts": row.attempts + 1, "claimed_until": None}
    gave_up = False
    if error is None:
        values.update(status="sent", sent_at=now, patient_number=None, last_error=None,
                      twilio_sid=sid)
    elif row.attempts + 1 >= int(config["ESCALATION_MAX_ATTEMPTS"]):
        gave_up = True
        values.update(status="failed", patient_number=None, last_error=error[:255])
        log.error("escalation %s to %s gave up after %d attempts: %s",
                  row.id, row.clinic_id, row.attempts + 1, error)
    else:
        delay = min(float(config["ESCALATION_BACKOFF"]) * 2 ** row.attempts, MAX_BACKOFF_SECONDS)
        values.update(next_attempt_at=now + timedelta(seconds=delay), last_error=error[:255])
        log.warning("escalation %s to %s failed (%s); retry in %.1fs",
                    row.id, row.clinic_id, error, delay)
    with Session(engine) as session, session.begin():
        session.execute(update(Escalation).where(Escalation.id == row.id).values(**values))
    if gave_up:
        alert_failed(app, row)  # an SMS falls back to the webhook; else the inbox says so
    elif sid:
        check_alert_failure(app, sid)  # Twilio may have reported failure before we stored sid


def deliver_due(app: Flask, limit: int = 20) -> int:
    """Deliver every due notification this process can claim; return how many were tried."""
    engine: Engine = app.extensions["calfline_store"].engine
    directory: ClinicDirectory = app.extensions["calfline_clinics"]
    config = dict(app.config)
    now = utcnow()
    resend_overdue(app, now)  # urgent inbox items nobody acknowledged: alert again
    hand_back_expired(app, now)  # take-overs without a staff reply for too long
    with Session(engine) as session:
        due = list(session.scalars(
            select(Escalation).where(Escalation.status == "pending",
                                     Escalation.next_attempt_at <= now)
            .order_by(Escalation.next_attempt_at).limit(limit)))
        session.expunge_all()
    tried = 0
    for row in due:
        if not _claim(engine, row.id, now):
            continue  # another process has it
        tried += 1
        clinic = directory.clinics.get(row.clinic_id)
        error, sid = None, None
        try:
            if clinic is None:
                raise DeliveryError(f"clinic {row.clinic_id!r} is no longer configured")
            if row.target == "webhook" and clinic.escalation_webhook_url:
                _post_webhook(row, clinic)
            elif row.target == "sms" and clinic.escalation_phone:
                sid = _send_sms(row, clinic, config, engine)
            else:
                raise DeliveryError(f"clinic {clinic.id!r} has no {row.target} route any more")
        except DeliveryError as exc:
            error = str(exc)
        _finish(app, row, error, sid)
    return tried


def run_worker(app: Flask, stop: threading.Event) -> None:
    """Deliver until `stop` is set, waking early when a route queues a notification.

    While the store's circuit is open (the database failed a webhook) it waits
    instead of queueing on a dead connection; a database error is logged once per
    outage, not every round.
    """
    wakeup: threading.Event = app.extensions["calfline_escalation_wakeup"]
    guard = app.extensions["calfline_store"].guard
    failing = False
    while not stop.is_set():
        busy = 0
        if guard.available:
            try:
                busy = deliver_due(app)
            except SQLAlchemyError as exc:
                if not failing:
                    log.warning("escalation worker: database error; retrying every %.0f s",
                                POLL_SECONDS, extra={"error": type(exc).__name__})
                failing = True
            else:
                if failing:
                    log.warning("escalation worker: database back")
                failing = False
        if not busy:
            wakeup.wait(POLL_SECONDS)
            wakeup.clear()


def install_escalation(app: Flask) -> None:
    """Prepare the outbox wake-up and, unless configured off, this process's worker thread."""
    app.extensions["calfline_escalation_wakeup"] = threading.Event()
    mode = app.config["ESCALATION_WORKER"]
    from responder.errors import ConfigError

    if mode not in {"thread", "off"}:
        raise ConfigError(f"CALFLINE_ESCALATION_WORKER={mode!r}: use 'thread' or 'off'")
    for name in ("TAKEOVER_MINUTES", "ACK_MINUTES"):
        if not float(app.config[name]) > 0:  # also refuses NaN
            raise ConfigError(f"CALFLINE_{name}={app.config[name]}: must be above 0 minutes")
    if mode == "off" or app.testing:
        return
    started: dict[str, int] = {}
    lock = threading.Lock()

    def ensure_worker() -> None:
        # Started by the first request of each process, never in a preloading master:
        # its thread would share pooled database connections with the forked workers.
        with lock:
            if started.get("pid") == os.getpid():
                return
            started["pid"] = os.getpid()
        thread = threading.Thread(target=run_worker, args=(app, threading.Event()),
                                  name="calfline-escalations", daemon=True)
        thread.start()

    app.before_request(ensure_worker)
