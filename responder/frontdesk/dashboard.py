"""The clinic dashboard: what the line handled, as SVG charts and the same figures as CSV.

Admins only (the admin blueprint's guard). Figures come from
responder.store.clinic_figures (messages, intents, care levels, check
questions) and responder.store.inbox_figures (time to acknowledge an urgent
item, "no data" until the inbox exists); days are UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import current_app, g, render_template, request
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response as BaseResponse

from responder.frontdesk.admin import bp, day_arg
from responder.frontdesk.charts import Chart, day_bars, row_bars
from responder.frontdesk.csv_export import Cell, csv_download
from responder.frontdesk.staff_audit import record_action
from responder.store import audit
from responder.store.clinic_figures import (
    CHECK_OUTCOMES,
    MAX_DAYS,
    OUT_OF_SCOPE,
    ClinicFigures,
    Window,
    clinic_figures,
)
from responder.store.inbox_figures import AckTimes, urgent_ack_times

DEFAULT_DAYS = 30
CHANNEL_LABELS = {"sms": "SMS", "voice": "Voice", "api": "API"}
CARE_LABELS = {"emergency": "Emergency", "urgent": "Urgent (same day)", "check": "Check asked",
               "soon": "See a provider soon", "self_care": "Self-care",
               "none": "Not a health answer", "unrecorded": "Not recorded"}
CARE_COLOURS = {"emergency": "#B3261E", "urgent": "#D55E00", "check": "#E69F00",
                "soon": "#56B4E9", "self_care": "#009E73", "none": "#999999",
                "unrecorded": "#D8DEE6"}
INTENT_COLOURS = {"red_flag": "#B3261E", OUT_OF_SCOPE: "#999999"}
CHECK_LABELS = {"yes": "Answered YES", "no": "Answered NO", "other": "Wrote something else",
                "no_reply": "No reply yet"}
CHECK_COLOURS = {"yes": "#D55E00", "no": "#009E73", "other": "#56B4E9", "no_reply": "#999999"}


def _window() -> Window:
    raw = request.args.get("days", str(DEFAULT_DAYS))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise BadRequest(f"days: a whole number from 1 to {MAX_DAYS}")
    return Window.ending(day_arg("to", datetime.now(UTC).date()), int(raw))


def _figures(window: Window) -> tuple[ClinicFigures, AckTimes | None]:
    engine = current_app.extensions["calfline_store"].engine
    return (clinic_figures(engine, g.clinic.numbers, window),
            urgent_ack_times(engine, g.clinic.id, window.since, window.until))


def _labels(keys: Any, known: dict[str, str]) -> dict[str, str]:
    """Known keys in their order, then any others (a new channel or care level) by name."""
    return {**{k: v for k, v in known.items() if k in keys},
            **{k: k for k in sorted(keys) if k not in known}}


def _charts(figures: ClinicFigures) -> list[Chart]:
    days = figures.window.days
    intents = {i.id: i.label for i in current_app.extensions["calfline"].catalog.intents.values()}
    by_intent = sorted(((k, intents.get(k, k), figures.total(figures.by_intent, k))
                        for k in figures.by_intent), key=lambda row: (-row[2], row[0]))
    checks = [(k, CHECK_LABELS[k], figures.total(figures.checks, k)) for k in CHECK_OUTCOMES]
    return [
        day_bars("Messages per day by channel", figures.by_channel, days,
                 _labels(figures.by_channel, CHANNEL_LABELS)),
        day_bars("Messages per day by care level", figures.by_care, days,
                 _labels(figures.by_care, CARE_LABELS), CARE_COLOURS),
        row_bars("Messages by intent", by_intent, INTENT_COLOURS),
        row_bars("Check questions asked, by answer", checks, CHECK_COLOURS),
    ]


@bp.app_template_filter("duration")
def duration(seconds: float) -> str:
    """Seconds as a person reads a wait: 45 s, 12 min, 3 h 5 min."""
    minutes = round(seconds / 60)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


@bp.get("/dashboard")
def dashboard() -> str:
    """The clinic's figures over the last N days (30 unless asked)."""
    window = _window()
    figures, acks = _figures(window)
    return render_template("console/dashboard.html", clinic=g.clinic, figures=figures,
                           acks=acks, charts=_charts(figures), window=window,
                           days=len(window.days), channels=CHANNEL_LABELS, cares=CARE_LABELS)


def figure_rows(figures: ClinicFigures, acks: AckTimes | None) -> Iterator[tuple[Cell, ...]]:
    """The dashboard's figures as (figure, day, key, value) rows; day "total" sums them."""
    for name, counts in (("messages_by_channel", figures.by_channel),
                         ("messages_by_intent", figures.by_intent),
                         ("messages_by_care", figures.by_care),
                         ("checks_by_answer", figures.checks)):
        for key in sorted(counts):
            for day in figures.window.days:
                if counts[key].get(day):
                    yield name, day.isoformat(), key, counts[key][day]
            yield name, "total", key, figures.total(counts, key)
    yield "messages", "total", "all", figures.messages
    for day in figures.window.days:
        counted = sum(per_day.get(day, 0) for per_day in figures.by_intent.values())
        if counted:
            share = figures.by_intent.get(OUT_OF_SCOPE, {}).get(day, 0) / counted
            yield "out_of_scope_rate", day.isoformat(), OUT_OF_SCOPE, round(share, 4)
    rate = figures.out_of_scope_rate
    yield "out_of_scope_rate", "total", OUT_OF_SCOPE, None if rate is None else round(rate, 4)
    if acks is None:
        yield "urgent_ack_seconds", "total", "no_data", None
        return
    yield "urgent_ack_seconds", "total", "median", acks.median_seconds
    yield "urgent_ack_seconds", "total", "p90", acks.p90_seconds
    yield "urgent_items", "total", "acknowledged", acks.acknowledged
    yield "urgent_items", "total", "unacknowledged", acks.unacknowledged


@bp.get("/dashboard.csv")
def dashboard_csv() -> BaseResponse:
    """The same figures as the page, one per row."""
    window = _window()
    figures, acks = _figures(window)
    record_action(audit.EXPORT_DASHBOARD, detail=f"{window.first}..{window.last}")
    return csv_download(f"dashboard-{g.clinic.id}-{window.first}-{window.last}.csv",
                        ("figure", "day", "key", "value"), list(figure_rows(figures, acks)))
