"""A bad intents/ file stops start-up and names the file and the field."""

import shutil
from pathlib import Path

import pytest
import yaml

from responder.errors import IntentDataError
from responder.nlu.catalog import load_catalog
from tests.conftest import INTENTS


@pytest.fixture
def intents_copy(tmp_path: Path) -> Path:
    target = tmp_path / "intents"
    shutil.copytree(INTENTS, target)
    return target


def _edit(path: Path, **changes: object) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"examples": None}, "examples"),
        ({"examples": ["ok", 3]}, "examples"),
        ({"id": "cramp"}, "id"),
        ({"replies": {"sms": "x", "voice": "y"}}, "replies.api"),
        ({"replies": {"sms": "Hi {patient}", "voice": "v", "api": "a"}}, "replies.sms"),
        ({"replies": {"sms": "Smart “quotes”", "voice": "v", "api": "a"}}, "replies.sms"),
        ({"replies": {"sms": "x" * 307, "voice": "v", "api": "a"}}, "replies.sms"),
        ({"care": "whenever"}, "care"),
        ({"replies_by_care": {"urgent": {"sms": "x", "voice": "v"}}}, "replies_by_care.urgent.api"),
        ({"replies_by_care": {"later": {"sms": "x", "voice": "v", "api": "a"}}},
         "replies_by_care.later"),
    ],
)
def test_bad_field_is_named(intents_copy: Path, changes: dict, field: str) -> None:
    path = intents_copy / "cramp_now.yaml"
    _edit(path, **changes)
    with pytest.raises(IntentDataError) as info:
        load_catalog(intents_copy)
    assert info.value.field == field
    assert "cramp_now.yaml" in str(info.value)


def test_missing_intent_file(intents_copy: Path) -> None:
    (intents_copy / "hydration.yaml").unlink()
    with pytest.raises(IntentDataError, match="hydration"):
        load_catalog(intents_copy)


def test_broken_yaml(intents_copy: Path) -> None:
    (intents_copy / "thanks.yaml").write_text("id: [unclosed", encoding="utf-8")
    with pytest.raises(IntentDataError, match="thanks.yaml"):
        load_catalog(intents_copy)


def test_the_check_question_must_fit_one_segment(intents_copy: Path) -> None:
    path = intents_copy / "_system.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["templates"]["check"]["sms"] = "Quick check: " + "is it swollen? " * 11 + "YES or NO"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(IntentDataError) as info:
        load_catalog(intents_copy)
    assert info.value.field == "templates.check.sms" and "one segment" in str(info.value)
