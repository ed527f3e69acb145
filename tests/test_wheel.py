"""The built wheel ships every module and data file, and the app starts from it installed.

A checkout hides packaging mistakes: responder/ is importable from the source
tree whether or not pyproject.toml lists a file. So this builds the wheel from
a copy of the sources (no stale build/ directory), installs it into a fresh
venv and runs its `calfline serve` from an empty directory, where `responder`
can only come from the installed wheel. Dependencies come from the project's
own environment (a .pth file), so nothing is downloaded but the build backend.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from tests.conftest import INTENTS, ROOT
from tests.servers import free_port

# What the front desk and the store read from the package at run time.
DATA_FILES = (
    "responder/frontdesk/openapi.yaml",
    "responder/frontdesk/templates/console/base.html",
    "responder/frontdesk/templates/console/login.html",
    "responder/frontdesk/static/console.css",
    "responder/frontdesk/static/console.js",
    "responder/store/migrations/env.py",
    "responder/store/migrations/script.py.mako",
    "responder/store/migrations/versions/0001_conversation_store.py",
    "responder/store/migrations/versions/0002_escalation_outbox.py",
    "responder/store/migrations/versions/0003_frontdesk_workflow.py",
    "responder/store/migrations/versions/0004_audit_dashboard.py",
    "responder/store/migrations/versions/0005_language.py",
    "responder/frontdesk/templates/console/inbox.html",
)


def package_files(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in (root / "responder").rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel with pip from a copy of pyproject.toml, README.md and responder/."""
    source = tmp_path_factory.mktemp("source")
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copy(ROOT / "README.md", source)
    shutil.copytree(ROOT / "responder", source / "responder",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--disable-pip-version-check", "-w", str(out), str(source)],
                   check=True, cwd=source, timeout=300)
    (built,) = out.glob("calfline-*.whl")
    return built


def test_the_wheel_holds_every_package_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if name.startswith("responder/")}
        entry_points = archive.read(next(n for n in archive.namelist()
                                         if n.endswith(".dist-info/entry_points.txt")))
    assert set(DATA_FILES) <= shipped
    assert shipped == package_files(ROOT)
    assert b"calfline = responder.cli:main" in entry_points


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; its dependencies are the project's own."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip()
    # Appended after the venv's own site-packages, so the wheel's `responder` comes first.
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "calfline-test-dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--no-deps", "--no-index", "--disable-pip-version-check", str(wheel)],
                   check=True, timeout=300)
    return venv


def clean_environment(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CALFLINE_", "TWILIO_", "PYTHON"))
           and k not in {"DATABASE_URL", "VIRTUAL_ENV"}}
    return {**env, **settings}


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture(scope="module")
def served(venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Run the installed `calfline serve` from an empty directory; yield its URL and database."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    database = elsewhere / "calfline.sqlite3"
    env = clean_environment(
        CALFLINE_INTENTS_DIR=str(INTENTS),  # intents/ is data beside the code, not in the wheel
        DATABASE_URL=f"sqlite:///{database}",
        CALFLINE_CLINICS_FILE=str(ROOT / "deploy" / "clinics.example.yaml"),
        CALFLINE_SECRET_KEY="wheel-test-secret",
        CALFLINE_ESCALATION_WORKER="off",
    )
    port = free_port()
    log = (elsewhere / "server.log").open("wb")
    process = subprocess.Popen([str(venv / "bin" / "calfline"), "serve", "--port", str(port)],
                               cwd=elsewhere, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (elsewhere / "server.log").read_text()[-3000:]
            try:
                if get(url + "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (elsewhere / "server.log").read_text()[-3000:]
            time.sleep(0.2)
        yield url, database
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_responder_comes_from_the_installed_wheel(venv: Path, tmp_path: Path) -> None:
    script = ("import json, responder, responder.frontdesk.api as api; "
              "print(json.dumps([responder.__file__, str(api.OPENAPI_FILE)]))")
    result = subprocess.run([str(venv / "bin" / "python"), "-c", script], cwd=tmp_path,
                            env=clean_environment(), check=True, capture_output=True, text=True)
    package, openapi = map(Path, json.loads(result.stdout))
    assert package.is_relative_to(venv) and not package.is_relative_to(ROOT)
    assert openapi.is_file() and openapi.is_relative_to(venv)


def test_the_installed_app_serves_its_data_files(served: tuple[str, Path]) -> None:
    url, database = served
    status, body = get(url + "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, body = get(url + "/readyz")
    assert status == 200, body
    status, body = get(url + "/api/v1/openapi.json")  # the OpenAPI file
    assert status == 200 and json.loads(body)["openapi"].startswith("3.1")
    status, body = get(url + "/console/login")  # a console template
    assert status == 200 and b"<form" in body
    status, body = get(url + "/console/static/console.css")  # a static file
    assert status == 200 and body == (ROOT / "responder/frontdesk/static/console.css").read_bytes()
    with sqlite3.connect(database) as connection:  # the migrations ran from the wheel
        (version,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    # The newest migration of the source tree: the wheel left none out.
    assert version == ScriptDirectory(str(ROOT / "responder/store/migrations")).get_current_head()
    assert {"conversations", "messages", "escalations", "inbox_items", "message_statuses"} <= tables
