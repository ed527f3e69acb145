"""Opening hours in a clinic profile: the structured form, the old free text, and what a
handoff reply promises from them (responder/frontdesk/hours.py)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from responder.errors import ClinicDataError
from responder.frontdesk.clinics import load_clinics
from responder.frontdesk.hours import callback_when, parse_opening_hours

LONDON = {"timezone": "Europe/London", "mon": "08:00-18:00", "tue": "08:00-18:00",
          "wed": "08:00-18:00", "thu": "08:00-18:00", "fri": "08:00-18:00",
          "sat": "09:00-12:30", "sun": "closed"}


def _cases() -> list[tuple[str, str]]:
    path = Path(__file__).parent / "data" / "callback_when.tsv"
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]
    return [(now, expected) for now, expected in rows]


@pytest.mark.parametrize(("now", "expected"), _cases())
def test_callback_time_follows_the_opening_hours(now: str, expected: str) -> None:
    hours = parse_opening_hours(LONDON)
    assert callback_when(hours, "", datetime.fromisoformat(now)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Mon-Fri 8am-6pm", "during opening hours, Mon-Fri 8am-6pm"),
     ("Mon\u2013Fri 8am\u20136pm", "during opening hours"),  # en dashes would make it UCS-2
     ("Monday to Friday 8 in the morning to 6 in the evening", "during opening hours"),
     ("", "as soon as they can")],
)
def test_free_text_hours_still_work(text: str, expected: str) -> None:
    assert callback_when(None, text, datetime.fromisoformat("2026-11-30T10:00:00Z")) == expected


def _load(tmp_path: Path, hours: Any) -> Any:
    clinic = {"id": "riverside", "name": "Riverside Physio", "numbers": ["+15550100001"],
              "phone": "+1 555 010 0002", "hours": hours}
    path = tmp_path / "clinics.yaml"
    path.write_text(yaml.safe_dump({"clinics": [clinic]}), encoding="utf-8")
    return load_clinics(path).clinics["riverside"]


def test_a_profile_takes_either_form(tmp_path: Path) -> None:
    old = _load(tmp_path, "Mon-Fri 8am-6pm")
    assert old.hours == "Mon-Fri 8am-6pm" and old.opening_hours is None
    assert not old.open_at(datetime.fromisoformat("2026-11-30T10:00:00Z"))
    new = _load(tmp_path, {**LONDON, "text": "Weekdays 8-6, Sat mornings"})
    assert new.hours == "Weekdays 8-6, Sat mornings"
    assert new.open_at(datetime.fromisoformat("2026-11-30T10:00:00Z"))
    assert not new.open_at(datetime.fromisoformat("2026-11-29T10:00:00Z"))  # a Sunday
    assert new.callback_when(datetime.fromisoformat("2026-11-29T10:00:00Z")) == \
        "tomorrow from 8am"


@pytest.mark.parametrize(
    ("hours", "field"),
    [({**LONDON, "timezone": "Mars/Olympus"}, "timezone"),
     ({"mon": "08:00-18:00"}, "timezone"),
     ({**LONDON, "mon": "8am-6pm"}, "mon"),
     ({**LONDON, "tue": "18:00-08:00"}, "tue"),
     ({**LONDON, "wed": 9}, "wed"),
     ({**LONDON, "funday": "10:00-11:00"}, "funday"),
     ({"timezone": "Europe/London", "mon": "closed"}, "mon"),
     (["Mon-Fri"], "")],
)
def test_bad_hours_name_the_field(tmp_path: Path, hours: Any, field: str) -> None:
    with pytest.raises(ClinicDataError) as error:
        _load(tmp_path, hours)
    assert error.value.field == "clinics[riverside].hours" + (f".{field}" if field else "")


def test_open_until_midnight_and_split_days() -> None:
    hours = parse_opening_hours({"timezone": "UTC", "mon": "08:00-12:00, 13:00-24:00"})
    lunch = datetime.fromisoformat("2026-11-30T12:30:00Z")
    assert callback_when(hours, "", lunch) == "today from 1pm"
    assert hours.closes_at(datetime.fromisoformat("2026-11-30T23:00:00Z")) == \
        datetime.fromisoformat("2026-12-01T00:00:00Z")


@pytest.mark.parametrize(("now", "expected"), [
    ("2026-11-30T10:00:00Z", "hoy antes de las 6 pm"),
    ("2026-11-30T07:59:00Z", "hoy desde las 8 am"),
    ("2026-11-30T19:00:00Z", "mañana desde las 8 am"),
    ("2026-12-05T13:00:00Z", "el lunes desde las 8 am"),
    ("2026-12-05T10:00:00Z", "hoy antes de las 12:30 pm"),
])
def test_the_spanish_callback_time_reads_as_spanish(now: str, expected: str) -> None:
    """Said in a Spanish handoff SMS: GSM-7, no á í ó ú (intents/README.md)."""
    said = callback_when(parse_opening_hours(LONDON), "", datetime.fromisoformat(now), "es")
    assert said == expected
    assert not set("áíóú") & set(said)


def test_spanish_without_hours_promises_a_call_when_they_can() -> None:
    assert callback_when(None, "", datetime.fromisoformat("2026-11-30T10:00:00Z"),
                         "es") == "en cuanto pueda"
    assert callback_when(None, "Mon-Fri 8am-6pm", datetime.fromisoformat(
        "2026-11-30T10:00:00Z"), "es") == "en horario de atencion, Mon-Fri 8am-6pm"
