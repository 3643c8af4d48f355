"""Reports' plain values: log-spaced histogram buckets, the periods of a report, the rows the
reports' storage reads (storage/reports.py) and the rows each report gives.

A duration (milliseconds, or seconds for agents) is counted in bucket ``b`` when
``RATIO ** b <= value < RATIO ** (b + 1)``: bounds a factor 1.1 apart, so the geometric middle
of a bucket, which a percentile reports, is within 5% (``sqrt(1.1) - 1``) of every value in it.
Values below ``FLOOR`` share the lowest bucket.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import partial
from typing import Any, Protocol, TypeVar

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


# The lower bounds of the buckets above LOWEST, up to a thousand days in milliseconds, for
# ``keyed_bucket_counts``: a bisection in C for each value, where ``bucket_of`` takes a logarithm
# and two powers in Python. The same ``RATIO ** b`` as ``bucket_of`` compares with.
_BOUNDS = tuple(RATIO**b for b in range(LOWEST + 1, math.ceil(math.log(1e11) / _LOG)))
_ABOVE = partial(bisect_right, _BOUNDS)  # how many bounds a value reaches
K = TypeVar("K")


def bucket_counts(values: Sequence[float]) -> dict[int, int]:
    """How many of values each bucket holds: ``bucket_of`` of each, counted."""
    return {
        bucket: n for (_, bucket), n in keyed_bucket_counts([None] * len(values), values).items()
    }


def keyed_bucket_counts(keys: Sequence[K], values: Sequence[float]) -> dict[tuple[K, int], int]:
    """How many of values each (key, bucket) holds, each value under the key beside it:
    ``bucket_of`` of each, counted (the receiver's group write counts a group's handling times
    at once, a histogram a key). A value past the table (or not a number) is left to
    ``bucket_of``."""
    counts = Counter(zip(keys, map(_ABOVE, values), strict=True))
    top = len(_BOUNDS)
    found = {(key, LOWEST + index): n for (key, index), n in counts.items() if index != top}
    if len(found) < len(counts):
        for key, value in zip(keys, values, strict=True):
            if not value < _BOUNDS[-1]:
                bucket = (key, bucket_of(value))
                found[bucket] = found.get(bucket, 0) + 1
    return found


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


# --- the rows a report gives (domain/reports.py: ``Outcome.rows``) ----------------------------
#
# One frozen row type a report; a row's JSON shape (``to_json``) is its fields in order, with a
# --split's columns (``split``: column, value) right after ``account`` in the reports that add
# them (messages, followers). ``bankwx report NAME --format json`` prints these objects.

Split = tuple[tuple[str, str | None], ...]  # a row's --split columns and their values


class ReportRow(Protocol):
    """Any report's row: what the renderer and the charts take."""

    def to_json(self) -> dict[str, Any]: ...


_FIELDS: dict[type, tuple[str, ...]] = {}  # a row type's fields but split, in order


class _Row:
    """A report row's JSON (``to_json``): its fields in order (period and account first in every
    row), with a --split's columns (``split``) right after account."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        names = _FIELDS.get(type(self))
        if names is None:
            found_fields = fields(self)  # type: ignore[arg-type]
            names = _FIELDS[type(self)] = tuple(f.name for f in found_fields if f.name != "split")
        shaped = {name: getattr(self, name) for name in names[:2]}
        shaped.update(getattr(self, "split", ()))
        for name in names[2:]:
            shaped[name] = getattr(self, name)
        return shaped


@dataclass(frozen=True, slots=True)
class MessagesRow(_Row):
    """Messages followers sent in a period, by the outcome the engine recorded, and handling
    times (percentiles: None when nothing was timed)."""

    period: str  # the period's start, ISO 8601 in the bank's time (as every report's row)
    account: str  # the account, or "*" for the sum of every account
    split: Split  # (msg_type, ...) or (route, ...) with --split type|route; else ()
    inbound: int
    retries: int
    replied: int
    default_reply: int
    late: int
    late_no_window: int
    unanswered: int
    failed: int
    no_reply: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True, slots=True)
class FollowersRow(_Row):
    """Follows and unfollows in a period (per scene and QR scene with --split scene), net,
    and the running total since the store began counting."""

    period: str
    account: str
    split: Split  # (scene, ...), (qr_scene, ...) with --split scene; else ()
    new: int
    lost: int
    net: int
    cumulative: int


@dataclass(frozen=True, slots=True)
class MenusRow(_Row):
    """Clicks on one menu key (or URL, page path) of one menu version in a period."""

    period: str
    account: str
    menu_version: int | None  # None: clicked when no menu this store deployed was live
    key: str
    name: str | None
    type: str | None
    clicks: int


@dataclass(frozen=True, slots=True)
class KeywordsRow(_Row):
    """Hits of one keyword rule in a period (the rule's fields None when it is gone)."""

    period: str
    account: str
    rule_id: int
    pattern: str | None
    match: str | None
    action: str | None
    removed: bool
    hits: int


@dataclass(frozen=True, slots=True)
class UnmatchedRow(_Row):
    """A text the default reply answered (masked), how often in a period, from how many
    followers."""

    period: str
    account: str
    text: str
    count: int
    followers: int


@dataclass(frozen=True, slots=True)
class BroadcastsRow(_Row):
    """A broadcast sent (or created, when unsent) in a period: approval, audience, results."""

    period: str
    account: str
    broadcast_id: int
    title: str
    state: str
    author: str
    approver: str | None
    created_at: str
    approved_at: str | None
    approval_minutes: float | None
    sent_at: str | None
    total: int
    sent: int
    filtered: int
    failed: int


@dataclass(frozen=True, slots=True)
class ApiRow(_Row):
    """One WeChat endpoint's calls in a period: errors, retries, latency, daily quota."""

    period: str
    account: str
    endpoint: str
    calls: int
    errors: int
    error_rate: float  # 0 (an int) without calls
    retries: int
    p50_ms: float | None
    p99_ms: float | None
    quota_used: int
    daily_quota: int | None
    token_refreshes: int


@dataclass(frozen=True, slots=True)
class AgentsRow(_Row):
    """Agent sessions that entered the queue in a period, per agent (or per group with
    --split group): response, handling and queue times (seconds), SLA, ratings."""

    period: str
    account: str
    agent: str | None
    group: str | None
    sessions: int
    first_response_p50_s: float | None
    first_response_p90_s: float | None
    handling_p50_s: float | None
    queue_wait_p50_s: float | None
    queue_wait_p90_s: float | None
    abandoned: int
    sla_breaches: int
    ratings: int
    rating_avg: float | None


@dataclass(frozen=True, slots=True)
class AlertsRow(_Row):
    """What ``alert status`` counts of the events received in a period (``event_type`` None:
    every type; one type with --split type)."""

    period: str
    account: str
    event_type: str | None
    received: int
    rejected: int
    duplicates: int
    suppressed: int
    deferred: int
    sent_wechat: int
    delivered: int
    sms: int
    failed: int
    unknown: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    sms_avoided: int
