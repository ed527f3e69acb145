"""A real `calfline serve` process with two clinics, and a stand-in for a clinic's webhook."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from werkzeug.security import generate_password_hash

from responder.frontdesk.clinics import hash_api_key
from tests.conftest import ROOT

RIVERSIDE_KEY = "cl_test_riverside_0123456789abcdef"
HILLTOP_KEY = "cl_test_hilltop_0123456789abcdef"
RIVERSIDE_NUMBER = "+15550100001"
HILLTOP_NUMBER = "+15550200001"
STAFF = {
    "riverside": ("frontdesk", "riverside-pass-123"),
    "hilltop": ("hilltop", "hilltop-pass-123"),
}
# Each clinic's admin (role: admin): the audit trail and dashboard; STAFF are plain staff.
ADMINS = {
    "riverside": ("riverside-admin", "riverside-admin-pass"),
    "hilltop": ("hilltop-admin", "hilltop-admin-pass"),
}
WEBHOOK_SECRET = "test-webhook-secret-0123456789"
RIVERSIDE_ALERT_PHONE = "+15550100009"
HILLTOP_ALERT_PHONE = "+15550200009"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WebhookRecorder:
    """A clinic's alert endpoint on 127.0.0.1: records each POST, can fail or stall on cue."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        return list(self.received)


def _handler(recorder: WebhookRecorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(recorder.delay)
            with recorder.lock:
                failing = recorder.fail_next > 0
                if failing:
                    recorder.fail_next -= 1
                else:
                    recorder.received.append({
                        "path": self.path, "headers": dict(self.headers), "body": body,
                    })
            self.send_response(503 if failing else 204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


def start_webhook() -> tuple[WebhookRecorder, ThreadingHTTPServer]:
    """Serve a WebhookRecorder on a free port of 127.0.0.1 in a thread."""
    recorder = WebhookRecorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return recorder, server


@pytest.fixture(scope="session")
def webhook() -> Iterator[WebhookRecorder]:
    recorder, server = start_webhook()
    yield recorder
    server.shutdown()
    server.server_close()


def _admin_entry(clinic: str) -> dict[str, str]:
    username, password = ADMINS[clinic]
    return {"username": username, "password_hash": generate_password_hash(password),
            "role": "admin"}


def write_clinics_file(path: Path, webhook_url: str, twilio_escalation: bool = False,
                       hours: Any = "Mon-Fri 8am-6pm", first: str | None = None,
                       hilltop_phone: bool = False) -> Path:
    """Two clinics: riverside escalates to the webhook; hilltop has a phone only.

    `twilio_escalation` adds riverside's alert phone (+15550100009); `first` picks the
    route of riverside's first alert; `hilltop_phone` gives hilltop its alert phone.
    """
    riverside_user, riverside_pw = STAFF["riverside"]
    hilltop_user, hilltop_pw = STAFF["hilltop"]
    escalation: dict[str, Any] = {"webhook_url": webhook_url, "webhook_secret": WEBHOOK_SECRET}
    if twilio_escalation:
        escalation["phone"] = RIVERSIDE_ALERT_PHONE
    if first:
        escalation["first"] = first
    hilltop_extra: dict[str, Any] = {"escalation": {"phone": HILLTOP_ALERT_PHONE}}
    data = {"clinics": [
        {
            "id": "riverside", "name": "Riverside Physio", "numbers": [RIVERSIDE_NUMBER],
            "phone": "+1 555 010 0002", "hours": hours,
            "escalation": escalation,
            "api_keys": [hash_api_key(RIVERSIDE_KEY)],
            "staff": [{"username": riverside_user,
                       "password_hash": generate_password_hash(riverside_pw)},
                      _admin_entry("riverside")],
        },
        {
            "id": "hilltop", "name": "Hilltop Sports Clinic", "numbers": [HILLTOP_NUMBER],
            "phone": "+1 555 020 0000", "escalate_chronic_pain": True,
            "api_keys": [hash_api_key(HILLTOP_KEY)],
            "staff": [{"username": hilltop_user,
                       "password_hash": generate_password_hash(hilltop_pw)},
                      _admin_entry("hilltop")],
            **(hilltop_extra if hilltop_phone else {}),
        },
    ]}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@dataclass
class LiveServer:
    """A `calfline serve` subprocess and how to reach it."""

    url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(env_overrides: dict[str, str], log: Path, port: int | None = None) -> LiveServer:
    """Start `calfline serve` on a free port (or `port`) and wait for /healthz."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALFLINE_", "TWILIO_"))}
    env.pop("DATABASE_URL", None)
    env.update({"CALFLINE_SECRET_KEY": "test-secret-key", "CALFLINE_ESCALATION_BACKOFF": "0.2"})
    env.update(env_overrides)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "responder.cli", "serve", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return LiveServer(url, process, env)
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def frontdesk_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("frontdesk")


@pytest.fixture(scope="session")
def server_env(frontdesk_dir: Path, webhook: WebhookRecorder) -> dict[str, str]:
    clinics = write_clinics_file(frontdesk_dir / "clinics.yaml", webhook.url)
    return {
        "CALFLINE_CLINICS_FILE": str(clinics),
        "DATABASE_URL": f"sqlite:///{frontdesk_dir / 'calfline.db'}",
    }


@pytest.fixture(scope="session")
def live_server(server_env: dict[str, str], frontdesk_dir: Path) -> Iterator[LiveServer]:
    server = start_server(server_env, frontdesk_dir / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def cautious_server(server_env: dict[str, str], frontdesk_dir: Path) -> Iterator[LiveServer]:
    """The same service with every message in the check band (by configuration)."""
    env = {**server_env, "CALFLINE_URGENT_THRESHOLD": "1", "CALFLINE_CHECK_THRESHOLD": "0",
           "DATABASE_URL": f"sqlite:///{frontdesk_dir / 'cautious.db'}"}
    server = start_server(env, frontdesk_dir / "cautious.log")
    yield server
    server.stop()


def http(method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """Send one request; return status, headers and the body parsed as JSON when it is JSON."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, head, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:  # an HTTPError holds the open response; close it
            status, head, raw = exc.code, dict(exc.headers), exc.read()
    if head.get("Content-Type", "").startswith("application/json"):
        return status, head, json.loads(raw)
    return status, head, raw


ADMIN_HASH_SECRET = "admin-tests-hash-secret-0123456789"


@pytest.fixture(scope="session")
def admin_server(frontdesk_dir: Path, webhook: WebhookRecorder) -> Iterator[LiveServer]:
    """A server with its own database, so the dashboard's figures are the tests' own rows."""
    clinics = write_clinics_file(frontdesk_dir / "admin-clinics.yaml", webhook.url)
    env = {"CALFLINE_CLINICS_FILE": str(clinics), "CALFLINE_HASH_SECRET": ADMIN_HASH_SECRET,
           "DATABASE_URL": f"sqlite:///{frontdesk_dir / 'admin.db'}"}
    server = start_server(env, frontdesk_dir / "admin.log")
    yield server
    server.stop()


# The front desk workflow (inbox, take-over, delivery) on the Flask test client, on SQLite
# and PostgreSQL, with the local stand-in for Twilio's REST API (tests/twilio_api.py).
PUBLIC_URL = "https://calf.example.org"
STATUS_URL = PUBLIC_URL + "/twilio/status"


@pytest.fixture
def twilio() -> Iterator[Any]:
    from tests.twilio_api import fake_twilio
    from tests.twilio_signing import TOKEN

    with fake_twilio(token=TOKEN, owned={RIVERSIDE_NUMBER, HILLTOP_NUMBER},
                     expected_callback=STATUS_URL, call_back=False) as api:
        yield api


@pytest.fixture
def workflow_config(twilio: Any, webhook: WebhookRecorder, tmp_path: Path) -> dict[str, Any]:
    """Settings for an app with both clinics, signed webhooks and Twilio's REST stand-in."""
    from tests.twilio_signing import TOKEN

    clinics = write_clinics_file(tmp_path / "clinics.yaml", webhook.url, twilio_escalation=True,
                                 hilltop_phone=True)
    return {"CLINICS_FILE": str(clinics), "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_ACCOUNT_SID": twilio.account, "TWILIO_API_URL": twilio.base_url,
            "PUBLIC_BASE_URL": PUBLIC_URL, "SECRET_KEY": "test-secret-key",
            "WTF_CSRF_ENABLED": True}
