"""/readyz tells the truth about the database and the spool; the logs carry the spool gauge."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy.engine import make_url

from responder.dialogue.respond import Responder
from responder.web import health
from tests.databases import postgres_schema
from tests.faultproxy import FaultProxy
from tests.log_capture import captured
from tests.twilio_signing import TOKEN, signed_post


@pytest.fixture
def proxied(responder: Responder, tmp_path: object) -> Iterator[tuple[Flask, FaultProxy]]:
    from responder import create_app

    with postgres_schema() as url, FaultProxy(5432) as proxy:
        via_proxy = make_url(url).set(port=proxy.port).render_as_string(hide_password=False)
        app = create_app({"TESTING": True, "RESPONDER": responder, "DATABASE_URL": via_proxy,
                          "TWILIO_AUTH_TOKEN": TOKEN, "SPOOL_DIR": f"{tmp_path}/spool",
                          "STORE_TIMEOUT": 0.5})
        yield app, proxy
        app.extensions["calfline_store"].close()


def test_ready_not_ready_degraded_ready(proxied: tuple[Flask, FaultProxy],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    app, proxy = proxied
    client = app.test_client()
    with captured("calfline.request") as requests:
        assert client.get("/readyz").get_json()["status"] == "ready"
        proxy.refuse()
        form = {"From": "+15553334444", "To": "+1555", "Body": "calf cramp",
                "MessageSid": "SM" + "f" * 32}
        assert b"<Message>" in signed_post(client, form).data  # answered all the same
        body = client.get("/readyz")
        assert body.status_code == 503
        checks = body.get_json()["checks"]
        assert checks["database"]["ok"] is False
        assert checks["database"]["detail"].startswith("not writable for ")
        assert checks["spool"] == {"ok": False, "detail": "1 turns waiting, growing"}

        proxy.heal()
        monkeypatch.setattr(health, "GROWING_SECONDS", 0.0)  # no turn spooled "lately"
        degraded = client.get("/readyz")
        assert degraded.status_code == 200
        assert degraded.get_json()["status"] == "degraded"
        assert degraded.get_json()["checks"]["spool"]["detail"] == "1 turns waiting, being replayed"

        app.extensions["calfline_replayer"].tick()
        ready = client.get("/readyz").get_json()
        assert ready["status"] == "ready" and ready["spool_pending"] == 0
    sms_lines = [r for r in requests.records if getattr(r, "path", "") == "/sms"]
    assert [getattr(r, "spool_pending", None) for r in sms_lines] == [1]  # the gauge
