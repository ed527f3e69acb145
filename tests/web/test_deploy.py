"""deploy/ as written: gunicorn with its config serves the app; .env.example is complete."""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from responder.store.conversation_store import ConversationStore, SenderHasher
from responder.store.database import open_engine
from responder.web.config import SETTINGS, from_environment
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
TOKEN = "deploy-test-token"
PHONE = "+15557654321"
BODY = "calves tight after my long run secretword"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read() or b"{}")


@dataclass
class Server:
    """A gunicorn started with deploy/gunicorn.conf.py, and where its logs went."""

    base: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def logs(self) -> tuple[str, str]:
        """Stop the server (flushing its logs) and return stdout and stderr."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        return self.stdout.read_text(), self.stderr.read_text()


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("gunicorn")
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CALFLINE_", "TWILIO_", "DATABASE_URL"))}
    env.update({
        "CALFLINE_BIND": f"127.0.0.1:{port}", "CALFLINE_WORKERS": "2",
        "TWILIO_AUTH_TOKEN": TOKEN, "DATABASE_URL": f"sqlite:///{tmp / 'calfline.sqlite3'}",
        "CALFLINE_HASH_SECRET": "deploy-test-hash-secret",
        "CALFLINE_SPOOL_DIR": str(tmp / "spool"),
    })
    stdout, stderr = tmp / "stdout.log", tmp / "stderr.log"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(DEPLOY / "gunicorn.conf.py"),
             "wsgi:app"], cwd=ROOT, env=env, stdout=out, stderr=err)
    server = Server(f"http://127.0.0.1:{port}", process, stdout, stderr)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            urllib.request.urlopen(f"{server.base}/healthz", timeout=2).close()
            break
        except OSError:
            time.sleep(0.2)
    yield server
    if process.poll() is None:
        process.kill()
        process.wait()


def test_gunicorn_config_as_written_serves_the_app(gunicorn: Server) -> None:
    assert _get(f"{gunicorn.base}/healthz") == (200, {"status": "ok"})
    status, body = _get(f"{gunicorn.base}/readyz")
    assert status == 200 and body["status"] == "ready"
    assert body["checks"]["database"] == {"ok": True, "detail": "writable"}
    assert body["checks"]["spool"] == {"ok": True, "detail": "empty"}
    assert body["checks"]["intents"]["ok"] is True

    url = f"{gunicorn.base}/sms"
    form = {"From": PHONE, "To": "+15550006000", "Body": BODY, "MessageSid": "SM" + "a" * 32}
    request = urllib.request.Request(url, data=urlencode(form).encode(), headers={
        "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, form)})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200 and b"<Message>" in response.read()
    with pytest.raises(urllib.error.HTTPError) as refused:  # a GET carries the number in the URL
        urllib.request.urlopen(f"{url}?From={PHONE}&Body=secretword", timeout=10)
    refused.value.close()
    assert refused.value.code == 405

    stdout, stderr = gunicorn.logs()
    # One JSON line per request, written by gunicorn's access log with the app's fields;
    # the app writes none of its own.
    requests = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    assert all(r["logger"] == "calfline.request" for r in requests), stdout
    assert '"calfline.request"' not in stderr
    sms = [r for r in requests if r["path"] == "/sms"]
    assert [(r["method"], r["status"]) for r in sms] == [("POST", 200), ("GET", 405)]
    assert sms[0]["intent"] == "post_run_tightness" and sms[0]["latency_ms"] > 0
    assert re.fullmatch(r"[0-9a-f]{32}", sms[0]["request_id"])
    for secret in (PHONE, PHONE[1:], "secretword", "long run"):
        assert secret not in stdout and secret not in stderr


def test_gunicorn_config_defaults() -> None:
    settings = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert settings["preload_app"] is True  # the trained matcher is shared, not rebuilt
    assert settings["workers"] >= 1 and settings["bind"] == "127.0.0.1:8000"
    assert settings["threads"] == 1 and settings["worker_class"] == "sync"
    assert settings["accesslog"] == "-"
    assert settings["raw_env"] == ["CALFLINE_REQUEST_LOG=server"]  # the access log is the line


def test_without_the_access_log_the_app_writes_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALFLINE_ACCESS_LOG", "off")
    settings = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert settings["accesslog"] is None and settings["raw_env"] == []


def _env_example() -> dict[str, str]:
    lines = (DEPLOY / ".env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {name.strip(): value for name, value in pairs}


def test_env_example_lists_every_setting_with_its_default() -> None:
    example = _env_example()
    missing = [v for v, _, _ in SETTINGS.values() if v not in example]
    assert not missing, f"add to deploy/.env.example: {missing}"
    # Read as the app would, every value equals the built-in default (the
    # intents folder is the one path that depends on where CalfLine lives).
    parsed, defaults = from_environment(example), from_environment({})
    differ = {k for k in SETTINGS if parsed[k] != defaults[k]} - {"INTENTS_DIR"}
    assert not differ, f"deploy/.env.example disagrees with config.py on {sorted(differ)}"


def test_env_example_reads_the_same_in_a_shell() -> None:
    result = subprocess.run(["sh", "-c", "set -a; . deploy/.env.example; env"], cwd=ROOT,
                            env={"PATH": os.environ["PATH"]}, capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0 and not result.stderr, result.stderr
    shell = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert {k: shell.get(k) for k in _env_example()} == _env_example()


def test_env_example_lists_every_gunicorn_variable() -> None:
    source = (DEPLOY / "gunicorn.conf.py").read_text()
    read = set(re.findall(r'os\.environ\.get\("([A-Z_]+)"', source))
    assert read and read <= set(_env_example())


def test_dockerfile_is_pinned_non_root_and_checks_health() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?$", text, re.M)
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in {"root", "0"}
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert re.search(r'^CMD \["gunicorn", "--config", "deploy/gunicorn.conf.py", .*"wsgi:app"\]$',
                     text, re.M)
    assert "http://127.0.0.1:8000/healthz" in text and '"--bind", "0.0.0.0:8000"' in text
    for path in re.findall(r"^COPY (\S+) ", text, re.M):
        assert (ROOT / path).exists(), path


def test_systemd_unit_runs_the_same_config() -> None:
    text = (DEPLOY / "calfline.service").read_text()
    assert re.search(r"^ExecStart=\S+/gunicorn --config deploy/gunicorn\.conf\.py wsgi:app$",
                     text, re.M)
    assert re.search(r"^User=calfline$", text, re.M)
    assert re.search(r"^EnvironmentFile=", text, re.M)
    if shutil.which("systemd-analyze"):
        result = subprocess.run(["systemd-analyze", "verify", str(DEPLOY / "calfline.service")],
                                capture_output=True, text=True, timeout=60, check=False)
        # The one complaint allowed: /opt/calfline is not installed on this machine.
        problems = [line for line in result.stderr.splitlines() if "calfline" in line
                    and "is not executable" not in line]
        assert not problems, result.stderr


def test_readyz_names_an_unreachable_database(app: Flask, client: FlaskClient) -> None:
    working = app.extensions["calfline_store"]
    # A real store on a port where no PostgreSQL listens.
    app.extensions["calfline_store"] = ConversationStore(
        open_engine("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2"),
        SenderHasher("x"))
    try:
        response = client.get("/readyz")
    finally:
        app.extensions["calfline_store"] = working
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"]["ok"] is False
    assert "OperationalError" in body["checks"]["database"]["detail"]
    assert "127.0.0.1:1" not in response.get_data(as_text=True)  # no URL leaks to callers


def test_readyz_without_a_database(app: Flask, client: FlaskClient) -> None:
    store = app.extensions.pop("calfline_store")
    try:
        response = client.get("/readyz")
    finally:
        app.extensions["calfline_store"] = store
    assert response.status_code == 200
    assert response.get_json()["checks"]["database"] == {
        "ok": True, "detail": "no database configured"}
