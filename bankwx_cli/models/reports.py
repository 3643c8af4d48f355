"""Reports' plain values: log-spaced histogram buckets, the periods of a report, and the rows
the reports' storage reads (storage/reports.py).

A duration (milliseconds, or seconds for agents) is counted in bucket ``b`` when
``RATIO ** b <= value < RATIO ** (b + 1)``: bounds a factor 1.1 apart, so the geometric middle
of a bucket, which a percentile reports, is within 5% (``sqrt(1.1) - 1``) of every value in it.
Values below ``FLOOR`` share the lowest bucket.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

RATIO = 1.1
FLOOR = 0.01
_LOG = math.log(RATIO)
LOWEST = math.floor(math.log(FLOOR) / _LOG)


def bucket_of(value: float) -> int:
    """The histogram bucket of a duration (non-negative)."""
    if value <= FLOOR:
        return LOWEST
    found = math.floor(math.log(value) / _LOG)
    # floating point: keep RATIO ** b <= value < RATIO ** (b + 1)
    if RATIO**found > value:
        found -= 1
    elif RATIO ** (found + 1) <= value:
        found += 1
    return max(found, LOWEST)


def middle_of(bucket: int) -> float:
    """The geometric middle of a bucket: what a percentile in it reports."""
    return float(RATIO ** (bucket + 0.5))


def percentile(histogram: Mapping[int, int], p: float) -> float | None:
    """The p-th percentile (nearest rank) of the counted values, as its bucket's middle; None
    when nothing was counted."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(p / 100 * total))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return middle_of(bucket)
    return middle_of(max(histogram))  # pragma: no cover - the ranks add up to total


def merge(into: dict[int, int], rows: Iterable[tuple[int, int]]) -> dict[int, int]:
    for bucket, n in rows:
        into[bucket] = into.get(bucket, 0) + n
    return into


@dataclass(frozen=True)
class Period:
    """One period of a report: its key (as the store groups it) and the UTC instants it
    covers, [start, end): the range's own start or end where the range cuts it, which is also
    what its rows show as their period."""

    key: str
    start: datetime
    end: datetime


# --- what the reports' storage reads (storage/reports.py) -------------------------------------


@dataclass(frozen=True)
class HourCalls:
    """API calls to one endpoint in one UTC hour, with the Asia/Shanghai day it falls in (the
    daily quota's)."""

    endpoint: str
    day: str  # YYYY-MM-DD, Asia/Shanghai
    hour: str  # the roll-up hour, UTC
    calls: int


@dataclass(frozen=True)
class LogEntry:
    """An inbound entry of the conversation log, as the backfill counts it."""

    id: int
    msg_type: str
    event: str
    content: str
    route: str
    outcome: str
    handling_ms: float | None
    deliveries: int
    state: str
    at: str


@dataclass(frozen=True)
class LoggedMessage:
    """An inbound message as a write unit just left it (live counting reads it back)."""

    account: str
    at: str
    msg_type: str
    event: str
    state: str  # processing | done
    route: str
    outcome: str
    handling_ms: float | None
    deliveries: int


@dataclass(frozen=True)
class UnmatchedText:
    """An inbound text the default reply answered (masked when logged)."""

    at: str
    openid: str
    content: str


@dataclass(frozen=True)
class RuleShown:
    """What the keywords report shows of a rule (removed ones too, while the store keeps
    them: ``removed_at``)."""

    id: int
    pattern: str
    match: str
    action: str | None
    removed_at: str | None = None


@dataclass(frozen=True)
class SessionTimes:
    """What the agents report reads of an agent session: its times (ISO, UTC), rating, the
    names of its agent and group, and the SLA (seconds) its group had when it opened."""

    entered_at: str
    opened_at: str | None
    closed_at: str | None
    first_response_at: str | None
    rating: int | None
    agent: str | None
    group: str | None
    sla: int | None


@dataclass(frozen=True, slots=True)
class Sums:
    """One row of a roll-up read (``Rollups.sums``): a table's counters summed over one
    period and one combination of the split columns asked for.

    ``period``: the period's key (``Period.key``; '' in total); ``split``: the split columns'
    values, in the order they were asked for (a histogram's ``bucket`` among them, last);
    ``counts``: the table's counters, in the order of ``names`` (its counter columns, one
    tuple every row of a read shares)."""

    period: str
    split: tuple[str | int, ...]
    counts: tuple[int, ...]
    names: tuple[str, ...] = field(repr=False)

    @property
    def key(self) -> tuple[str | int, ...]:
        """The period and the split values: what tells a read's rows apart."""
        return (self.period, *self.split)

    def counter(self, name: str) -> int:
        """One counter, by its column's name (ValueError for a column the table lacks)."""
        return self.counts[self.names.index(name)]
