"""Shared fixtures: one responder per session (loading trains the model), fresh apps per test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from responder import create_app
from responder.dialogue.respond import Responder

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
INTENTS = ROOT / "intents"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's CALFLINE_*/TWILIO_* settings out of every test."""
    for name in list(os.environ):
        if name.startswith(("CALFLINE_", "TWILIO_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)  # tests pick their database explicitly


@pytest.fixture(scope="session")
def responder() -> Responder:
    return Responder.from_directory(INTENTS)


@pytest.fixture
def app(responder: Responder, tmp_path: Path) -> Iterator[Flask]:
    database = f"sqlite:///{tmp_path / 'calfline.sqlite3'}"
    app = create_app({"TESTING": True, "RESPONDER": responder, "DATABASE_URL": database,
                      "SPOOL_DIR": str(tmp_path / "spool")})
    yield app
    app.extensions["calfline_store"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on a SQLite file and on a fresh PostgreSQL schema (tests/databases.py)."""
    from tests.databases import postgres_schema, sqlite_url

    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def make_app(responder: Responder, database_url: str,
             tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build apps on `database_url` (several share it, like restarts); close them after."""
    apps: list[Flask] = []

    def build(**config: Any) -> Flask:
        settings = {"TESTING": True, "RESPONDER": responder, "DATABASE_URL": database_url,
                    "SPOOL_DIR": str(tmp_path / "spool")}
        apps.append(create_app({**settings, **config}))
        return apps[-1]

    yield build
    for built in apps:
        built.extensions["calfline_store"].close()
