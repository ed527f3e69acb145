"""Time from an urgent message to its acknowledgement, read from the front-desk inbox.

    urgent_ack_times(engine, clinic_id, since, until) -> AckTimes | None

The inbox table (`inbox_items`) is created by the front-desk workflow's
migration (0003_frontdesk_workflow), not by this branch: until that table
exists this returns None and the dashboard shows "no data". The columns it
reads (any others are ignored):

    clinic_id        text     the clinic the item belongs to
    urgent           boolean  true for red flags and checks answered YES
    created_at       UTC timestamp   when the urgent message came in
    acknowledged_at  UTC timestamp or NULL   when a person acknowledged it

Percentiles are nearest-rank (the smallest value with at least p% of the
values at or below it), so each figure is a real item's wait.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, Column, Engine, MetaData, String, Table, inspect, select

from responder.store.models import UTCDateTime

INBOX_TABLE = "inbox_items"
# A read-only view of the columns above; not part of Base.metadata, never created here.
_INBOX = Table(
    INBOX_TABLE, MetaData(),
    Column("clinic_id", String(40)),
    Column("urgent", Boolean),
    Column("created_at", UTCDateTime()),
    Column("acknowledged_at", UTCDateTime()),
)


@dataclass(frozen=True)
class AckTimes:
    """Seconds from urgent message to acknowledgement, over the items acknowledged."""

    acknowledged: int
    unacknowledged: int
    median_seconds: float | None
    p90_seconds: float | None


def nearest_rank(values: list[float], percent: float) -> float:
    """The nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(percent / 100 * len(ordered))) - 1]


def urgent_ack_times(engine: Engine, clinic_id: str, since: datetime,
                     until: datetime) -> AckTimes | None:
    """Median and 90th percentile wait for urgent items created in [since, until)."""
    if not inspect(engine).has_table(INBOX_TABLE):
        return None
    stmt = select(_INBOX.c.created_at, _INBOX.c.acknowledged_at).where(
        _INBOX.c.clinic_id == clinic_id, _INBOX.c.urgent.is_(True),
        _INBOX.c.created_at >= since, _INBOX.c.created_at < until)
    with engine.connect() as connection:
        rows = connection.execute(stmt).all()
    waits = [max(0.0, (acked - created).total_seconds())
             for created, acked in rows if acked is not None]
    if not waits:
        return AckTimes(0, len(rows), None, None)
    return AckTimes(len(waits), len(rows) - len(waits), statistics.median(waits),
                    nearest_rank(waits, 90))
