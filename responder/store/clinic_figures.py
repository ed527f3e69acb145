"""The clinic dashboard's figures, counted in SQL on the clinic's own numbers only.

    clinic_figures(engine, numbers, window) -> ClinicFigures

A message is an inbound row (a text, an API question, or one turn of a call in
which something was heard); call-control turns (silence, a menu key) have no
intent and are not counted. Days are UTC calendar days. A check question is a
reply from the `system.check.*` template; its answer is the sender's next
message in that conversation: "yes", "no", another message ("other"), or none
yet ("no_reply").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, select
from sqlalchemy.orm import aliased

from responder.store.models import Conversation, Message

OUT_OF_SCOPE = "out_of_scope"
CHECK_TEMPLATE_PREFIX = "system.check."
CHECK_OUTCOMES = ("yes", "no", "other", "no_reply")
MAX_DAYS = 366


@dataclass(frozen=True)
class Window:
    """The UTC days a dashboard covers, `first` to `last` inclusive."""

    first: date
    last: date

    @classmethod
    def ending(cls, last: date, days: int) -> Window:
        """The `days` days up to and including `last`."""
        if not 1 <= days <= MAX_DAYS:
            raise ValueError(f"days must be 1 to {MAX_DAYS}")
        return cls(last - timedelta(days=days - 1), last)

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time(), UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


Counts = dict[str, dict[date, int]]  # key (channel, intent, ...) -> day -> count


@dataclass
class ClinicFigures:
    """Every figure of one clinic's dashboard over one window."""

    window: Window
    by_channel: Counts = field(default_factory=dict)
    by_intent: Counts = field(default_factory=dict)
    by_care: Counts = field(default_factory=dict)
    checks: Counts = field(default_factory=dict)  # outcome -> day the question was asked

    def total(self, counts: Counts, key: str | None = None) -> int:
        """Sum one key's days, or every key's."""
        keys = [key] if key is not None else list(counts)
        return sum(sum(counts.get(k, {}).values()) for k in keys)

    @property
    def messages(self) -> int:
        return self.total(self.by_channel)

    @property
    def out_of_scope_rate(self) -> float | None:
        """Share of messages that matched no calf topic; None with no messages."""
        return self.total(self.by_intent, OUT_OF_SCOPE) / self.messages if self.messages else None


def _day(engine: Engine, column: Any) -> Any:
    """A UTC 'YYYY-MM-DD' of a timestamp column, in this dialect's SQL."""
    if engine.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)  # SQLite keeps UTC text 'YYYY-MM-DD HH:MM:SS...'


def _add(counts: Counts, key: str, day: str, n: int) -> None:
    per_day = counts.setdefault(key, {})
    when = date.fromisoformat(day)
    per_day[when] = per_day.get(when, 0) + n


def _messages(engine: Engine, numbers: list[str], window: Window, figures: ClinicFigures) -> None:
    day = _day(engine, Message.created_at).label("day")
    stmt = (select(day, Message.channel, Message.intent, Message.care, func.count())
            .join(Conversation, Message.conversation_id == Conversation.id)
            .where(Conversation.our_number.in_(numbers), Message.direction == "in",
                   Message.intent.is_not(None), Message.intent != "",
                   Message.created_at >= window.since, Message.created_at < window.until)
            .group_by(day, Message.channel, Message.intent, Message.care))
    with engine.connect() as connection:
        for when, channel, intent, care, n in connection.execute(stmt):
            _add(figures.by_channel, channel, when, n)
            _add(figures.by_intent, intent, when, n)
            _add(figures.by_care, care or "unrecorded", when, n)


def _checks(engine: Engine, numbers: list[str], window: Window, figures: ClinicFigures) -> None:
    asked, nxt, said = aliased(Message), aliased(Message), aliased(Message)
    following = and_(nxt.conversation_id == asked.conversation_id, nxt.direction == "in",
                     nxt.id > asked.id)
    next_id = select(func.min(nxt.id)).where(following).correlate(asked).scalar_subquery()
    answer = (select(said.check_answer).where(said.id == next_id).correlate(asked)
              .scalar_subquery())
    stmt = (select(_day(engine, asked.created_at), next_id, answer)
            .join(Conversation, asked.conversation_id == Conversation.id)
            .where(Conversation.our_number.in_(numbers), asked.direction == "out",
                   asked.template_id.startswith(CHECK_TEMPLATE_PREFIX, autoescape=True),
                   asked.created_at >= window.since, asked.created_at < window.until))
    with engine.connect() as connection:
        for when, following_id, reply in connection.execute(stmt):
            outcome = reply if reply in ("yes", "no") else "other" if following_id else "no_reply"
            _add(figures.checks, outcome, when, 1)


def clinic_figures(engine: Engine, numbers: Iterable[str], window: Window) -> ClinicFigures:
    """Count a clinic's messages and check questions in `window`; no numbers, no figures."""
    figures, numbers = ClinicFigures(window), list(numbers)
    if numbers:
        _messages(engine, numbers, window, figures)
        _checks(engine, numbers, window, figures)
    return figures
