"""A clinic's opening hours: when a person can call a patient back, and when to put calls through.

A profile's `hours` is either the old free text ("Mon-Fri 8am-6pm", quoted in
replies as it is) or a mapping with a timezone and the ranges of each weekday:

    hours:
      timezone: America/New_York      # an IANA zone; opening times are local
      text: Mon-Fri 8am-6pm           # optional: how people see it written
      mon: "08:00-18:00"
      tue: "08:00-12:00, 13:00-18:00"
      sat: closed                     # a day left out is closed too

No Flask here; clinics.py validates a profile's hours with parse_opening_hours().
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from responder.gsm import non_gsm7_chars
from responder.nlu.catalog import LONGEST_VARIABLES

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_RANGE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-4]):([0-5]\d)$")
# Free-text hours longer than this are not quoted in an SMS; the catalog checks templates
# against the longest quote ("during opening hours, " + 40 characters).
MAX_QUOTED_HOURS = len(LONGEST_VARIABLES["callback_when"]) - len("during opening hours, ")
# What {callback_when} says when the clinic gave no hours at all.
NO_HOURS = "as soon as they can"
Ranges = tuple[tuple[time, time], ...]


class HoursError(ValueError):
    """Raise when a profile's hours cannot be read; `field` names the part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class OpeningHours:
    """Weekly opening ranges in one timezone."""

    timezone: str
    week: tuple[Ranges, ...]  # Monday first, 7 entries

    @property
    def zone(self) -> ZoneInfo:
        """The clinic's timezone."""
        return ZoneInfo(self.timezone)

    def _ranges_on(self, day: date) -> list[tuple[datetime, datetime]]:
        zone = self.zone
        return [(datetime.combine(day, start, zone), _end(day, end, zone))
                for start, end in self.week[day.weekday()]]

    def closes_at(self, now: datetime) -> datetime | None:
        """When the current opening ends; None when the clinic is closed at `now`."""
        local = now.astimezone(self.zone)
        for start, end in self._ranges_on(local.date()):
            if start <= local < end:
                return end
        return None

    def next_opening(self, now: datetime) -> datetime | None:
        """The next time the clinic opens after `now` (within a week), in its timezone."""
        local = now.astimezone(self.zone)
        for offset in range(8):
            for start, _ in self._ranges_on(local.date() + timedelta(days=offset)):
                if start > local:
                    return start
        return None


def _end(day: date, end: time, zone: ZoneInfo) -> datetime:
    if end == time(0, 0):  # "24:00" or "00:00" as a closing time: midnight after the day
        return datetime.combine(day + timedelta(days=1), time(0, 0), zone)
    return datetime.combine(day, end, zone)


def _day_ranges(name: str, value: Any) -> Ranges:
    if value is None or (isinstance(value, str) and value.strip().lower() == "closed"):
        return ()
    if not isinstance(value, str):
        raise HoursError(name, 'must be "HH:MM-HH:MM" ranges separated by commas, or closed')
    ranges = []
    for part in value.split(","):
        found = _RANGE.match(part.strip())
        if not found:
            raise HoursError(name, f'{part.strip()!r} is not a range like "08:00-18:00"')
        h1, m1, h2, m2 = (int(x) for x in found.groups())
        start = time(h1, m1)
        end = time(0, 0) if h2 == 24 else time(h2, m2)
        if (h2 == 24 and m2) or (end != time(0, 0) and end <= start):
            raise HoursError(name, f"{part.strip()!r} must close after it opens, on the same day")
        ranges.append((start, end))
    return tuple(sorted(ranges))


def parse_opening_hours(data: Mapping[str, Any]) -> OpeningHours:
    """Read the mapping form of `hours`; raise HoursError naming the bad field."""
    unknown = set(data) - {"timezone", "text", *DAYS}
    if unknown:
        raise HoursError(sorted(unknown)[0], f"unknown field; use timezone, text or {DAYS}")
    zone = data.get("timezone")
    if not isinstance(zone, str) or not zone.strip():
        raise HoursError("timezone", "must name an IANA timezone such as Europe/London")
    try:
        ZoneInfo(zone.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise HoursError("timezone", f"{zone!r} is not a known timezone") from exc
    week = tuple(_day_ranges(day, data.get(day)) for day in DAYS)
    if not any(week):
        raise HoursError("mon", "at least one day must have opening hours")
    return OpeningHours(zone.strip(), week)


def clock(moment: datetime) -> str:
    """8am, 5:30pm, 12pm: how a time of day reads in a short text."""
    hour = moment.hour % 12 or 12
    suffix = "am" if moment.hour < 12 else "pm"
    return f"{hour}{suffix}" if moment.minute == 0 else f"{hour}:{moment.minute:02d}{suffix}"


# Without á (not GSM-7): "sabado" in an SMS keeps it two segments (intents/README.md).
DAY_NAMES_ES = ("lunes", "martes", "miercoles", "jueves", "viernes", "sabado", "domingo")
# The words of {callback_when} per language; Spanish stays GSM-7 (no á í ó ú) for SMS.
WORDS = {
    "en": {"today": "today", "tomorrow": "tomorrow", "on": "on {day}", "before": "before {time}",
           "from": "from {time}", "hours": "during opening hours", "none": NO_HOURS},
    "es": {"today": "hoy", "tomorrow": "mañana", "on": "el {day}", "before": "antes de {time}",
           "from": "desde {time}", "hours": "en horario de atencion",
           "none": "en cuanto pueda"},
}


def _clock_in(moment: datetime, language: str) -> str:
    """'6pm' in English; 'las 6 pm' (or 'la 1 pm') in Spanish."""
    if language != "es":
        return clock(moment)
    hour = moment.hour % 12 or 12
    article = "la" if hour == 1 else "las"
    return f"{article} {clock(moment)[:-2]} {'am' if moment.hour < 12 else 'pm'}"


def _day_word(moment: datetime, today: date, language: str = "en") -> str:
    words = WORDS.get(language, WORDS["en"])
    if moment.date() == today:
        return words["today"]
    if moment.date() == today + timedelta(days=1):
        return words["tomorrow"]
    names = DAY_NAMES_ES if language == "es" else DAY_NAMES
    day = names[moment.weekday()]
    return words["on"].format(day=day)


def callback_when(
    hours: OpeningHours | None, text: str, now: datetime, language: str = "en"
) -> str:
    """When a clinic will call back, as the {callback_when} of a handoff reply.

    Open now: "today before 6pm"; closed: the next opening, "tomorrow from 8am"
    ("hoy antes de las 6 pm", "mañana desde las 8 am" in Spanish). Free-text hours
    are quoted; without any hours the clinic calls when it can.
    """
    words = WORDS.get(language, WORDS["en"])
    if hours is not None:
        local_now = now.astimezone(hours.zone)
        closes = hours.closes_at(now)
        if closes is not None:
            day = _day_word(closes - timedelta(seconds=1), local_now.date(), language)
            return f"{day} " + words["before"].format(time=_clock_in(closes, language))
        opens = hours.next_opening(now)
        if opens is not None:
            day = _day_word(opens, local_now.date(), language)
            return f"{day} " + words["from"].format(time=_clock_in(opens, language))
    text = " ".join(text.split())
    # Quoted only when short and GSM-7 ("Mon–Fri" with an en dash would make a reply UCS-2).
    if text and len(text) <= MAX_QUOTED_HOURS and not non_gsm7_chars(text):
        return f"{words['hours']}, {text}"
    return words["hours"] if text else words["none"]
