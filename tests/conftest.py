"""Shared fixtures: one responder per session (loading trains the model), fresh apps per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from responder import create_app
from responder.respond import Responder

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
INTENTS = ROOT / "intents"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's CALFLINE_*/TWILIO_* settings out of every test."""
    for name in list(os.environ):
        if name.startswith(("CALFLINE_", "TWILIO_")):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def responder() -> Responder:
    return Responder.from_directory(INTENTS)


@pytest.fixture
def app(responder: Responder, tmp_path: Path) -> Iterator[Flask]:
    yield create_app({"TESTING": True, "RESPONDER": responder})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
