"""Imports in responder/ point downwards only, and the core never needs Flask or a database.

Every module belongs to the layer of its sub-package; a module may import its
own layer and the layers below it, never one above. The order, lowest first,
is the one the code's real imports satisfy:

    shared     responder/errors.py, responder/gsm.py: import nothing from responder
    nlu        the catalog and the matcher
    dialogue   the Responder, replies, SMS context, the call flow (uses nlu)
    store      the database (saves dialogue's ConversationState and Turn)
    frontdesk  clinics, the JSON API, the console, escalation (reads the store)
    channels   the Twilio webhooks (a clinic's number picks its name, a red flag
               queues the clinic's alert)
    web        settings, logs, health, and create_app in responder/__init__.py
               (wires every layer into Flask)
    cli        the `calfline` command (serves the app, reads the settings)

Lazy imports inside functions and `if TYPE_CHECKING:` imports count too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "responder"
LAYERS = ("shared", "nlu", "dialogue", "store", "frontdesk", "channels", "web", "cli")
# Modules at the package root that are not sub-packages: the shared leaves and create_app.
ROOT_MODULES = {"responder.errors": "shared", "responder.gsm": "shared", "responder": "web"}
# The core is plain Python: no web framework, no database, no channel SDK.
CORE_LAYERS = ("nlu", "dialogue")
CORE_FORBIDDEN = ("flask", "werkzeug", "flask_wtf", "wtforms", "sqlalchemy", "alembic",
                  "psycopg", "twilio")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str | None:
    """Return the layer of a responder module, or None for one outside every layer."""
    if module in ROOT_MODULES:
        return ROOT_MODULES[module]
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def imports(module: str, path: Path | None = None) -> Iterator[tuple[str, int]]:
    """Yield (imported module, line) for every import in `module`, relative ones resolved."""
    path = path or MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                # `from responder.channels import sms` imports the module responder.channels.sms.
                submodule = f"{base}.{alias.name}"
                yield (submodule if submodule in MODULES else base), node.lineno


def internal_imports(module: str, path: Path | None = None) -> Iterator[tuple[str, int]]:
    for target, line in imports(module, path):
        if target == "responder" or target.startswith("responder."):
            yield target, line


def test_every_module_is_in_a_layer() -> None:
    assert len(MODULES) > 40
    assert [m for m in MODULES if layer_of(m) is None] == []


@pytest.mark.parametrize("module", [m for m in MODULES if layer_of(m) in CORE_LAYERS])
def test_the_core_imports_no_web_framework_or_database(module: str) -> None:
    found = [f"line {line}: {target}" for target, line in imports(module)
             if target.split(".")[0] in CORE_FORBIDDEN]
    assert found == [], f"{module} must not import {', '.join(CORE_FORBIDDEN)}"


def upwards(module: str, path: Path | None = None) -> list[str]:
    """Return the imports of `module` that reach a layer above its own."""
    own = LAYERS.index(layer_of(module) or "")
    return [f"line {line}: {target} ({layer_of(target)})"
            for target, line in internal_imports(module, path)
            if LAYERS.index(layer_of(target) or "") > own]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_downwards(module: str) -> None:
    own = LAYERS.index(layer_of(module) or "")
    assert upwards(module) == [], f"{module} ({LAYERS[own]}) imports a higher layer"


def test_shared_modules_import_nothing_from_responder() -> None:
    shared = [m for m, layer in ROOT_MODULES.items() if layer == "shared"]
    assert {m: list(internal_imports(m)) for m in shared} == {m: [] for m in shared}


def test_no_import_cycles() -> None:
    graph = {m: {target for target, _ in internal_imports(m) if target != m} for m in MODULES}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = path[path.index(module):] + [module]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, path + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_the_check_sees_lazy_relative_and_type_checking_imports(tmp_path: Path) -> None:
    """Guard against a check that passes because it sees nothing."""
    fake = tmp_path / "fake.py"
    fake.write_text("from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from flask import Flask\n"
                    "def later():\n    from ..channels import sms\n    from . import matcher\n")
    found = dict(imports("responder.nlu.fake", fake))
    assert found == {"typing": 1, "flask": 3, "responder.channels.sms": 5,
                     "responder.nlu.matcher": 6}
    assert upwards("responder.nlu.fake", fake) == ["line 5: responder.channels.sms (channels)"]
    # The real code has such imports: `calfline serve` builds the app lazily.
    assert "responder" in dict(internal_imports("responder.cli.calfline"))
