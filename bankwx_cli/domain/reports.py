"""Reports (监管统计): message volumes and handling times, followers, menu clicks, keyword hits,
agent sessions, broadcasts, alerts, the WeChat API's health; and the backfill of the roll-ups
they read.

A report reads one snapshot of the store (``Store.reading``): every figure is what was
committed when it began. Its range is whole hours, ``since`` inclusive and ``until``
exclusive, cut into periods of the bank's time (Asia/Shanghai, UTC+8 without daylight saving:
days, weeks from Monday and months are sums of UTC hours). Figures are rounded once, here.

Time series (messages, followers) give one row per period (zeros for an empty one, percentiles
``None``); rankings (menus, keywords, api, broadcasts) give the rows there are.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from bankwx_cli.clock import from_iso, iso, parse_user_time
from bankwx_cli.domain import accounts
from bankwx_cli.domain.permissions import require
from bankwx_cli.errors import ValidationError
from bankwx_cli.models.outbox import UnitFilter
from bankwx_cli.models.reports import (
    AgentsRow,
    AlertsRow,
    ApiRow,
    BroadcastsRow,
    FollowersRow,
    HourCalls,
    KeywordsRow,
    LogEntry,
    MenusRow,
    MessagesRow,
    Period,
    ReportRow,
    SessionTimes,
    Split,
    Sums,
    UnmatchedRow,
    bucket_counts,
    keyed_bucket_counts,
    merge,
    middle_of,
    percentile,
)
from bankwx_cli.storage.reports import TABLES, Rollups, hour_of

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.extensions import Registry

NAMES = ("messages", "followers", "menus", "keywords", "agents", "broadcasts", "alerts", "api")
BY = ("hour", "day", "week", "month", "total")
SPLITS: dict[str, tuple[str, ...]] = {
    "messages": ("type", "route"),
    "followers": ("scene",),
    "agents": ("group",),
    "alerts": ("type",),
}
ALL = "*"  # the account of a row summing every account
READ = "report.read"
BACKFILL = "report.backfill"
DEFAULT_DAYS = 7

# --- the messages report's columns, by the outcome the engine recorded ------------------------

CATEGORIES = ("replied", "late", "late_no_window", "unanswered", "failed", "no_reply")
MESSAGE_COLUMNS = ("inbound", "retries", "replied", "default_reply", "late", "late_no_window",
                   "unanswered", "failed", "no_reply")  # fmt: skip

# Every outcome the engine records for an inbound message (storage/engine.py,
# domain/routing.py, domain/outbox.py's late hook, and the areas' hooks and lookups), and the
# column of the messages report that counts it. A claim still 'processing' has the outcome ''.
# tests/domain/reports/test_outcomes.py fails on an outcome the code produces that is missing.
OUTCOMES: dict[str, str] = {
    "replied": "replied",
    "late_enqueued": "late",
    "late_no_window": "late_no_window",
    "late_no_allowance": "late_no_window",  # the window is open, its 5 messages spent
    "late_unsendable": "unanswered",
    "late_silent": "unanswered",
    "late": "unanswered",
    "unhandled_key": "unanswered",
    "unknown_type": "unanswered",
    "": "unanswered",  # still processing: the handler died or still runs
    "handler_error": "failed",
    "unknown_action": "failed",
    "recorded": "no_reply",
    "ignored": "no_reply",
    "silent": "no_reply",
    # agents (domain/agents.py): the follower's message answered by the platform's own text
    "rated": "replied",
    "ended": "replied",
    "handover": "replied",
    # ... or passed to an agent (who answers in the session, not in the callback)
    "forwarded": "no_reply",
    "queued": "no_reply",
}
# Outcomes that are never stored on an inbound row: the dry run's (keyword test) and a
# retry's answer.
NOT_LOGGED = frozenset({"action", "retry_pending", "retry_replayed"})
# WeChat's own notices, not something a follower sent: no inbound.
JOB_EVENTS = frozenset({"templatesendjobfinish", "masssendjobfinish", "publishjobfinish"})
MENU_EVENTS = frozenset({"click", "view", "view_miniprogram", "scancode_push",
                         "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album",
                         "pic_weixin", "location_select"})  # fmt: skip
ROUTE_KINDS = ("rule", "action", "default", "event", "agent", "error", "unknown", "other")
SCENE_QR = "ADD_SCENE_QR_CODE"
SCENE_UNKNOWN = "unknown"


# The columns of each report, in order (a --split adds its own after ``account``).
COLUMNS: dict[str, tuple[str, ...]] = {
    "messages": ("period", "account", *MESSAGE_COLUMNS, "p50_ms", "p90_ms", "p99_ms"),
    "followers": ("period", "account", "new", "lost", "net", "cumulative"),
    "menus": ("period", "account", "menu_version", "key", "name", "type", "clicks"),
    "keywords": ("period", "account", "rule_id", "pattern", "match", "action", "removed", "hits"),
    "unmatched": ("period", "account", "text", "count", "followers"),
    "broadcasts": ("period", "account", "broadcast_id", "title", "state", "author", "approver",
                   "created_at", "approved_at", "approval_minutes", "sent_at", "total", "sent",
                   "filtered", "failed"),
    "api": ("period", "account", "endpoint", "calls", "errors", "error_rate", "retries",
            "p50_ms", "p99_ms", "quota_used", "daily_quota", "token_refreshes"),
    "agents": ("period", "account", "agent", "group", "sessions", "first_response_p50_s",
               "first_response_p90_s", "handling_p50_s", "queue_wait_p50_s", "queue_wait_p90_s",
               "abandoned", "sla_breaches", "ratings", "rating_avg"),
    "alerts": ("period", "account", "event_type", "received", "rejected", "duplicates",
               "suppressed", "deferred", "sent_wechat", "delivered", "sms", "failed", "unknown",
               "latency_p50_ms", "latency_p99_ms", "sms_avoided"),
}  # fmt: skip
SPLIT_COLUMNS = {"type": ("msg_type",), "route": ("route",), "scene": ("scene", "qr_scene"),
                 "group": ()}  # fmt: skip  # agents: the group column is always there
# A report whose split fills a column it always has (null without the split): none added.
SPLIT_IN_PLACE = {"agents": ("group",), "alerts": ("event_type",)}
# The figure a chart draws and the table's bar column shows, and what names a ranking's row.
MAIN = {"messages": "inbound", "followers": "new", "menus": "clicks", "keywords": "hits",
        "unmatched": "count", "broadcasts": "sent", "api": "calls",
        "agents": "sessions", "alerts": "received"}  # fmt: skip
LABEL = {"menus": "key", "keywords": "pattern", "unmatched": "text", "broadcasts": "title",
         "api": "endpoint", "agents": "agent"}  # fmt: skip


def columns(req: Request) -> list[str]:
    """The columns of the request's rows, in order."""
    name = "unmatched" if req.report == "keywords" and req.unmatched else req.report
    found = list(COLUMNS.get(name, ("period", "account")))
    found[2:2] = split_columns(req)
    return found


def split_columns(req: Request) -> tuple[str, ...]:
    """The columns a --split adds to the request's rows (none for a report whose split fills
    a column it always has)."""
    if not req.split or req.report in SPLIT_IN_PLACE:
        return ()
    return SPLIT_COLUMNS[req.split]


def split_shown(req: Request) -> tuple[str, ...]:
    """The columns that tell a split's rows apart (a chart's series)."""
    if not req.split:
        return ()
    return SPLIT_IN_PLACE.get(req.report) or SPLIT_COLUMNS[req.split]


def category(outcome: str) -> str:
    """The messages report's column of an outcome (``unanswered`` for one it does not know)."""
    return OUTCOMES.get(outcome, "unanswered")


def route_kind(route: str) -> str:
    """The route kind of a stored route: rule (static reply), action, default, event, agent,
    error, unknown (message type), other."""
    head = route.split(":", 1)[0]
    if head == "rule":
        return "action" if ":action:" in route else "rule"
    if head in ("default", "event", "agent", "error", "unknown"):
        return head
    if route.endswith(":agent"):  # an area's own agent route (trial:agent)
        return "agent"
    return "other"


def message_counts(
    msg_type: str, route: str, outcome: str, deliveries: int, done: bool
) -> dict[str, int]:
    """The roll-up counters of one inbound message (rollup_messages' columns)."""
    column = category(outcome) if done else "unanswered"
    counts = {"inbound": 1, "retries": max(deliveries - 1, 0), column: 1}
    if column == "replied" and route == "default":
        counts["default_reply"] = 1
    return counts


# --- the range and its periods --------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    since: datetime
    until: datetime
    by: str

    @property
    def since_hour(self) -> str:
        return hour_of(iso(self.since))

    @property
    def until_hour(self) -> str:
        return hour_of(iso(self.until))


def _bank_tz() -> tzinfo:
    from bankwx_cli.clock import BANK_TZ

    return BANK_TZ


def _whole_hour(text: str, option: str) -> datetime:
    when = parse_user_time(text, option)
    if when.minute or when.second or when.microsecond:
        raise ValidationError(
            f"{option} '{text}' is not on the hour: reports run in whole hours. "
            f"Give a time like {when.astimezone(_bank_tz()).strftime('%Y-%m-%dT%H:00')}."
        )
    return when


def parse_range(
    now: datetime, since: str | None = None, until: str | None = None, by: str = "day"
) -> Range:
    """The report's range from --since and --until (Asia/Shanghai without an offset; a date
    alone is the start of its day): by default the last 7 full days; --since alone runs to the
    end of the current hour, --until alone from 7 days before it. Raises ValidationError for
    a time off the hour, an unknown --by, or a range that ends before it starts."""
    if by not in BY:
        raise ValidationError(f"--by '{by}' is not a period: use {', '.join(BY)}.")
    start = _whole_hour(since, "--since") if since else None
    end = _whole_hour(until, "--until") if until else None
    if end is None:
        if start is None:
            local = now.astimezone(_bank_tz())
            end = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
        else:
            end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            end += timedelta(hours=1)
    if start is None:
        start = end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise ValidationError(
            f"--since ({shown(start)}) is not before --until ({shown(end)}): give a range that "
            "ends after it starts."
        )
    return Range(start, end, by)


def shown(when: datetime) -> str:
    """ISO 8601 in the bank's time, with +08:00."""
    return when.astimezone(_bank_tz()).isoformat()


def _period_start(when: datetime, by: str) -> datetime:
    local = when.astimezone(_bank_tz())
    if by == "hour":
        return when.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if by == "week":
        day -= timedelta(days=day.weekday())
    elif by == "month":
        day = day.replace(day=1)
    return day.astimezone(UTC)


def _next(start: datetime, by: str) -> datetime:
    if by == "hour":
        return start + timedelta(hours=1)
    local = start.astimezone(_bank_tz())
    if by == "day":
        return (local + timedelta(days=1)).astimezone(UTC)
    if by == "week":
        return (local + timedelta(days=7)).astimezone(UTC)
    month = local.replace(day=28) + timedelta(days=4)
    return month.replace(day=1).astimezone(UTC)


def _key(start: datetime, by: str) -> str:
    local = start.astimezone(_bank_tz())
    if by == "hour":
        return hour_of(iso(start))
    if by == "month":
        return local.strftime("%Y-%m")
    return local.strftime("%Y-%m-%d")


def periods(span: Range) -> list[Period]:
    """The periods of the range, in order; the first (and --by total's one) starts at since."""
    if span.by == "total":
        return [Period("", span.since, span.until)]
    found = []
    start = _period_start(span.since, span.by)
    while start < span.until:
        end = _next(start, span.by)
        found.append(
            Period(_key(start, span.by), max(start, span.since), min(end, span.until))
        )  # fmt: skip
        start = end
    return found


def period_finder(found: Sequence[Period]) -> Callable[[str], Period]:
    """The period holding an ISO UTC time (one of the range's: the caller read it so)."""
    from bisect import bisect_right

    starts = [iso(p.start) for p in found]

    def find(at: str) -> Period:
        return found[max(bisect_right(starts, at) - 1, 0)]

    return find


def bounds(span: Range) -> list[tuple[str, str, str]] | None:
    """The periods as the roll-ups' reads take them (key, first hour, end hour), for days,
    weeks and months (None by the hour or in total: one read groups those as cheaply)."""
    if span.by in ("hour", "total"):
        return None
    return [(p.key, hour_of(iso(p.start)), hour_of(iso(p.end))) for p in periods(span)]


# --- accounts and permissions ---------------------------------------------------------------


def _accounts(app: AppContext, account: str | None, all_accounts: bool, permission: str) -> tuple[
    list[str], str
]:  # fmt: skip
    """The accounts a report reads, checked (permission on each), and the name its rows show."""
    if account and all_accounts:
        raise ValidationError("--account and --all-accounts exclude each other: give one of them.")
    if all_accounts:
        names = list(app.store.accounts.names())
        for name in names:
            require(app, permission, name)
        return names, ALL
    name = accounts.resolve(app, account).name
    require(app, permission, name)
    return [name], name


def _split_of(report: str, split: str | None) -> str | None:
    if split is None:
        return None
    allowed = SPLITS.get(report, ())
    if split not in allowed:
        offer = f"use {', '.join(allowed)}" if allowed else "it has none"
        raise ValidationError(f"--split '{split}': the {report} report cannot split so; {offer}.")
    return split


@dataclass(frozen=True)
class Request:
    """What the command line asked for, checked."""

    report: str
    span: Range
    accounts: tuple[str, ...]
    account: str  # what the rows show: the name, or "*"
    split: str | None = None
    unmatched: bool = False
    limit: int = 20


def request(
    app: AppContext,
    report: str,
    *,
    since: str | None = None,
    until: str | None = None,
    by: str = "day",
    account: str | None = None,
    all_accounts: bool = False,
    split: str | None = None,
    unmatched: bool = False,
    limit: int = 20,
) -> Request:
    """Check a report's options (ValidationError, exit 1) and the operator's report.read on
    every account it reads (PermissionDenied, exit 4), before anything is read."""
    if report not in NAMES:
        raise ValidationError(f"no report named '{report}': use {', '.join(NAMES)}.")
    if limit < 1:
        raise ValidationError(f"--limit {limit} is below 1: give 1 or more.")
    span = parse_range(app.clock.now(), since, until, by)
    chosen = _split_of(report, split)
    names, shown_as = _accounts(app, account, all_accounts, READ)
    return Request(report, span, tuple(names), shown_as, chosen, unmatched, limit)


@dataclass(frozen=True)
class Outcome:
    """A report's rows, and what to say on stderr beside them."""

    rows: Sequence[ReportRow]
    time_series: bool
    notes: tuple[str, ...] = ()


def run(app: AppContext, req: Request) -> Outcome:
    """The report's rows, read from one snapshot of the store."""
    builder = _BUILDERS[req.report]
    rollups = app.store.rollups
    with app.store.reading():
        return builder(app, rollups, req)


# --- messages ---------------------------------------------------------------------------------


def _split_column(req: Request) -> tuple[str, ...]:
    if req.split == "type":
        return ("msg_type",)
    if req.split == "route":
        return ("route",)
    return ()


def _messages(app: AppContext, rollups: Rollups, req: Request) -> Outcome:
    span = req.span
    split = _split_column(req)
    sums = rollups.sums("rollup_messages", req.accounts, span.since_hour, span.until_hour,
                        span.by, split, periods=bounds(span))  # fmt: skip
    hist = rollups.sums("rollup_handling", req.accounts, span.since_hour, span.until_hour,
                        span.by, (*split, "bucket"), periods=bounds(span))  # fmt: skip
    by_key, histograms = _grouped(sums, hist, MESSAGE_COLUMNS)
    rows = []
    for period in periods(span):
        for key in _keys_of(by_key, period, split):
            counts = by_key.get(key, dict.fromkeys(MESSAGE_COLUMNS, 0))
            histogram = histograms.get(key, {})
            rows.append(MessagesRow(
                shown(period.start), req.account, _split_values(split, key[1:]), **counts,
                p50_ms=_ms(percentile(histogram, 50)), p90_ms=_ms(percentile(histogram, 90)),
                p99_ms=_ms(percentile(histogram, 99)),
            ))  # fmt: skip
    return Outcome(rows, time_series=True)


Key = tuple[str | int | None, ...]  # a row's period key and split values (None: no split)


def _grouped(
    sums: Iterable[Sums], hist: Iterable[Sums], columns: Sequence[str]
) -> tuple[dict[Key, dict[str, int]], dict[Key, dict[int, int]]]:
    """A time series' summed counters (``columns`` of ``sums``) and histograms (``hist``,
    read with the same split and then ``bucket``) by period and split values."""
    by_key: dict[Key, dict[str, int]] = {}
    for found in sums:
        counts = by_key.setdefault(found.key, dict.fromkeys(columns, 0))
        for column in columns:
            counts[column] += found.counter(column)
    histograms: dict[Key, dict[int, int]] = {}
    for found in hist:
        key, bucket = found.key[:-1], found.split[-1]
        merge(histograms.setdefault(key, {}), [(int(bucket), found.counter("n"))])
    return by_key, histograms


def _split_values(columns: Sequence[str], values: Sequence[str | int | None]) -> Split:
    """A row's --split columns and their values (None for a period without rows)."""
    return tuple((c, None if v is None else str(v)) for c, v in zip(columns, values, strict=True))


def _keys_of(
    by_key: Mapping[Key, Mapping[str, int]], period: Period, split: Sequence[str]
) -> list[Key]:
    """The rows of a period: its split values with counts, in order; one row of zeros when
    it has none (a split value whose counts all moved on, a claim settled, is not a row)."""
    keys = sorted(
        (k for k, v in by_key.items() if k[0] == period.key and any(v.values())),
        key=lambda k: tuple(map(str, k)),
    )
    return keys or [(period.key, *(None for _ in split))]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# --- followers --------------------------------------------------------------------------------


def _followers(app: AppContext, rollups: Rollups, req: Request) -> Outcome:
    span = req.span
    split = ("scene", "qr_scene") if req.split == "scene" else ()
    sums = rollups.sums("rollup_followers", req.accounts, span.since_hour, span.until_hour,
                        span.by, split, periods=bounds(span))  # fmt: skip
    before = rollups.sums("rollup_followers", req.accounts, "", span.since_hour, "total", split)
    running: dict[tuple[str | int, ...], int] = {}
    for counted in before:
        key = counted.split
        running[key] = running.get(key, 0) + counted.counter("new") - counted.counter("lost")
    by_key = {r.key: r for r in sums}
    rows = []
    for period in periods(span):
        # rows for the scenes followed or left in the period; an empty one: one row of zeros
        here = sorted({k[1:] for k in by_key if k[0] == period.key})
        if not here:
            rows.append(FollowersRow(shown(period.start), req.account,
                                     _split_values(split, [None] * len(split)), new=0, lost=0,
                                     net=0, cumulative=sum(running.values())))  # fmt: skip
        for key in here:
            found = by_key[(period.key, *key)]
            new, lost = found.counter("new"), found.counter("lost")
            running[key] = running.get(key, 0) + new - lost
            # a follow without a QR scene: qr_scene None
            scenes: Split = (
                (("scene", str(key[0])), ("qr_scene", str(key[1]) or None)) if split else ()
            )
            rows.append(FollowersRow(shown(period.start), req.account, scenes, new=new, lost=lost,
                                     net=new - lost, cumulative=running[key]))  # fmt: skip
    return Outcome(rows, time_series=True)


# --- menus ------------------------------------------------------------------------------------


def menu_keys(content: str | None) -> dict[str, tuple[str, str]]:
    """What a stored menu (WeChat's get shape) names: key, URL or page path -> (name, type);
    the default menu first, then the conditional ones."""
    found: dict[str, tuple[str, str]] = {}
    if not content:
        return found
    try:
        data = json.loads(content)
    except ValueError:
        return found
    menus = [data.get("menu") or {}, *(data.get("conditionalmenu") or [])]

    def walk(buttons: Iterable[Mapping[str, Any]]) -> None:
        for button in buttons:
            subs = button.get("sub_button")
            if isinstance(subs, Mapping):
                subs = subs.get("list")
            if subs:
                walk(subs)
                continue
            kind = str(button.get("type", ""))
            key = button.get("url") if kind == "view" else button.get("key")
            if kind == "miniprogram":
                key = button.get("pagepath")
            if key:
                found.setdefault(str(key), (str(button.get("name", "")), kind))

    for menu in menus:
        if isinstance(menu, Mapping):
            walk(menu.get("button") or [])
    return found


def _menus(app: AppContext, rollups: Rollups, req: Request) -> Outcome:
    span = req.span
    sums = rollups.sums("rollup_menus", req.accounts, span.since_hour, span.until_hour, span.by,
                        ("account", "menu_version", "key"), periods=bounds(span))  # fmt: skip
    contents: dict[tuple[str, int], dict[str, tuple[str, str]]] = {}
    merged: dict[tuple[str, int, str], int] = {}
    for row in sums:
        account, version, key = str(row.split[0]), int(row.split[1]), str(row.split[2])
        clicked = (row.period, version, key)
        merged[clicked] = merged.get(clicked, 0) + row.counter("clicks")
        if (account, version) not in contents:
            contents[(account, version)] = menu_keys(
                rollups.menu_content(account, version) if version else None
            )
    names: dict[tuple[int, str], tuple[str | None, str | None]] = {}
    for (_, version), keys in contents.items():
        for key, named in keys.items():
            names.setdefault((version, key), named)
    rows = []
    for period in periods(span):
        found = [(v, k, n) for (p, v, k), n in merged.items() if p == period.key]
        found.sort(key=lambda item: (-item[2], item[0], item[1]))
        for version, key, clicks in found:
            name, kind = names.get((version, key), (None, None))
            rows.append(MenusRow(shown(period.start), req.account, menu_version=version or None,
                                 key=key, name=name, type=kind, clicks=clicks))  # fmt: skip
    return Outcome(rows, time_series=False)


# --- keywords ---------------------------------------------------------------------------------


def _keywords(app: AppContext, rollups: Rollups, req: Request) -> Outcome:
    span = req.span
    if req.unmatched:
        return _unmatched(app, rollups, req)
    sums = rollups.sums("rollup_keywords", req.accounts, span.since_hour, span.until_hour,
                        span.by, ("rule_id",), periods=bounds(span))  # fmt: skip
    rules = rollups.keyword_rules(req.accounts)
    rows = []
    for period in periods(span):
        found = [(int(r.split[0]), r.counter("hits")) for r in sums if r.period == period.key]
        found.sort(key=lambda item: (-item[1], item[0]))
        for rule_id, hits in found:
            rule = rules.get(rule_id)
            rows.append(KeywordsRow(
                shown(period.start), req.account, rule_id=rule_id,
                pattern=rule.pattern if rule else None,
                match=rule.match if rule else None,
                action=rule.action if rule else None,
                removed=rule is None or rule.removed_at is not None,
                hits=hits,
            ))  # fmt: skip
    return Outcome(rows, time_series=False)


_SPACES = re.compile(r"\s+")


def _unmatched(app: AppContext, rollups: Rollups, req: Request) -> Outcome:
    """Inbound texts answered by the default reply, most frequent first (masked, trimmed,
    white-space runs as one space), from the log (as far back as its retention)."""
    from bankwx_cli.domain.masking import mask

    span = req.span
    all_periods = periods(span)
    find = period_finder(all_periods)
    counted: dict[tuple[str, str], tuple[int, set[str]]] = {}
    shown_as: dict[str, str] = {}  # what texts show as (followers repeat theirs), bounded
    for entry in rollups.unmatched(req.accounts, iso(span.since), iso(span.until)):
        text = shown_as.get(entry.content)
        if text is None:
            text = _SPACES.sub(" ", mask(entry.content)).strip()
            if len(shown_as) < 100_000:
                shown_as[entry.content] = text
        if not text:
            continue
        period = find(entry.at)
        n, followers = counted.get((period.key, text), (0, set()))
        followers.add(entry.openid)
        counted[(period.key, text)] = (n + 1, followers)
    notes: list[str] = []
    oldest = rollups.oldest_text_at(req.accounts)
    if oldest is None:
        notes.append("the conversation log holds no text (see its retention): nothing to count.")
    elif oldest > iso(span.since):
        notes.append(
            f"--since is before the conversation log's oldest text ({shown(from_iso(oldest))}; "
            "see its retention): unmatched texts before it are not counted."
        )
    rows = []
    for period in all_periods:
        found = [(t, n, len(f)) for (p, t), (n, f) in counted.items() if p == period.key]
        found.sort(key=lambda item: (-item[1], item[0]))
        for text, n, distinct in found[: req.limit]:
            rows.append(UnmatchedRow(shown(period.start), req.account, text=text, count=n,
                                     followers=distinct))  # fmt: skip
    return Outcome(rows, time_series=False, notes=tuple(notes))


# --- broadcasts -------------------------------------------------------------------------------


def _broadcasts(app: AppContext, rollups: Rollups, req: Request) -> Outcome:
    from bankwx_cli.models.broadcasts import TemplateContent

    span = req.span
    ids = rollups.broadcasts(req.accounts, iso(span.since), iso(span.until))
    all_periods = periods(span)
    find = period_finder(all_periods)
    rows = []
    for broadcast_id in ids:
        b = app.store.broadcasts.get(broadcast_id)
        if b is None:  # pragma: no cover - read in the same snapshot
            continue
        sent_at = b.started_at
        at = sent_at or b.created_at
        period = find(_text(at))
        units = app.store.outbox.counts(b.source)
        lost_units = units.get("failed") + units.get("unknown")
        if isinstance(b.content, TemplateContent):
            failed_deliveries = sum(
                1
                for unit in app.store.outbox.all(UnitFilter(source=b.source), None)
                if (unit.delivery_status or "").startswith("failed")
            )
            sent, filtered, failed = units.get("sent"), 0, failed_deliveries + lost_units
        else:
            jobs = b.jobs.values()
            sent = sum(j.sent for j in jobs)
            filtered = sum(j.filtered for j in jobs)
            failed = sum(j.errors for j in jobs) + _mass_followers(app, b.source, b.audience_size)
        created = _text(b.created_at)
        approved = _text(b.approved_at) if b.approved_at else None
        rows.append(BroadcastsRow(
            shown(period.start), req.account if req.account == ALL else b.account,
            broadcast_id=b.id, title=b.title, state=b.state, author=b.created_by,
            approver=b.approved_by, created_at=created, approved_at=approved,
            approval_minutes=round((from_iso(approved) - from_iso(created)).total_seconds()
                                   / 60, 1) if approved else None,
            sent_at=_text(sent_at) if sent_at else None, total=b.audience_size,
            sent=sent, filtered=filtered, failed=failed,
        ))  # fmt: skip
    return Outcome(rows, time_series=False)


def _text(value: str | datetime) -> str:
    return iso(value) if isinstance(value, datetime) else str(value)


def _mass_followers(app: AppContext, source: str, audience: int) -> int:
    """Followers of a mass broadcast's units that failed or whose outcome is unknown: the
    openids a unit lists, or the whole audience for a unit sent to a tag or to all."""
    lost = 0
    for state in ("failed", "unknown"):
        for unit in app.store.outbox.all(UnitFilter(source=source, state=state), None):
            touser = (unit.payload or {}).get("touser")
            lost += len(touser) if isinstance(touser, list) else audience
    return lost


# --- api --------------------------------------------------------------------------------------

TOKEN_PATHS = ("/cgi-bin/token", "/cgi-bin/stable_token")
# Daily quotas of the protocol sheet §7.1 (calls a day); the account setting api_quotas
# overrides them.
DAILY_QUOTAS: dict[str, int] = {
    "/cgi-bin/token": 2000,
    "/cgi-bin/stable_token": 500000,
    "/cgi-bin/menu/create": 1000,
    "/cgi-bin/menu/get": 10000,
    "/cgi-bin/get_current_selfmenu_info": 10000,
    "/cgi-bin/menu/delete": 1000,
    "/cgi-bin/menu/addconditional": 2000,
    "/cgi-bin/menu/delconditional": 2000,
    "/cgi-bin/menu/trymatch": 20000,
    "/cgi-bin/media/upload": 100000,
    "/cgi-bin/media/get": 200000,
    "/cgi-bin/message/custom/send": 500000,
    "/cgi-bin/message/mass/send": 100,
    "/cgi-bin/message/mass/sendall": 100,
    "/cgi-bin/qrcode/create": 100000,
    "/cgi-bin/user/get": 500,
    "/cgi-bin/user/info": 5000000,
    "/cgi-bin/user/info/batchget": 5000000,
    "/cgi-bin/user/info/updateremark": 10000,
    "/cgi-bin/message/template/send": 100000,
    "/cgi-bin/draft/add": 1000,
    "/cgi-bin/draft/get": 500,
    "/cgi-bin/draft/delete": 1000,
    "/cgi-bin/draft/update": 1000,
    "/cgi-bin/draft/count": 1000,
    "/cgi-bin/draft/batchget": 1000,
    "/cgi-bin/freepublish/submit": 100,
    "/cgi-bin/freepublish/get": 100,
    "/cgi-bin/freepublish/delete": 10,
    "/cgi-bin/freepublish/getarticle": 100,
    "/cgi-bin/freepublish/batchget": 100,
}


def _api(app: AppContext, rollups: Rollups, req: Request) -> Outcome:
    span = req.span
    appids = rollups.appids(req.accounts)
    sums = rollups.sums("rollup_api", list(appids), span.since_hour, span.until_hour, span.by,
                        ("endpoint",), periods=bounds(span))  # fmt: skip
    hist = rollups.sums("rollup_api_latency", list(appids), span.since_hour, span.until_hour,
                        span.by, ("endpoint", "bucket"), periods=bounds(span))  # fmt: skip
    first_day = _period_start(span.since, "day")
    daily: dict[str, list[HourCalls]] = {}
    # by the hour a period ends inside a day; else at a midnight or the range's end, where
    # whole days (summed up to the range's end) give the same
    whole_days = span.by != "hour"
    for hour in rollups.daily_calls(list(appids), hour_of(iso(first_day)), span.until_hour,
                                    whole_days):  # fmt: skip
        daily.setdefault(hour.endpoint, []).append(hour)
    for hours in daily.values():
        hours.sort(key=lambda c: c.hour)
    histograms: dict[tuple[str, str], dict[int, int]] = {}
    for counted in hist:
        endpoint, bucket = str(counted.split[0]), int(counted.split[1])
        merge(
            histograms.setdefault((counted.period, endpoint), {}), [(bucket, counted.counter("n"))]
        )
    rows = []
    for period in periods(span):
        found = sorted((r for r in sums if r.period == period.key), key=lambda r: str(r.split[0]))
        for row in found:
            endpoint = str(row.split[0])
            calls, errors = row.counter("calls"), row.counter("errors")
            histogram = histograms.get((period.key, endpoint), {})
            rows.append(ApiRow(
                shown(period.start), req.account, endpoint=endpoint, calls=calls, errors=errors,
                error_rate=round(errors / calls, 4) if calls else 0,
                retries=row.counter("retries"),
                p50_ms=_ms(percentile(histogram, 50)),
                p99_ms=_ms(percentile(histogram, 99)),
                quota_used=_quota_used(daily, endpoint, period),
                daily_quota=_quota(app, req.accounts, endpoint),
                token_refreshes=calls - errors if endpoint in TOKEN_PATHS else 0,
            ))  # fmt: skip
    return Outcome(rows, time_series=False)


def _quota_used(daily: Mapping[str, list[HourCalls]], endpoint: str, period: Period) -> int:
    """Most calls on one quota day (Asia/Shanghai) that the period touches, each day counted
    from its midnight up to the period's end. ``daily``: each endpoint's hours, in order."""
    from bisect import bisect_left

    found = daily.get(endpoint, [])
    hours = [row.hour for row in found]  # in order: a day's row comes before its period ends
    first = bisect_left(hours, hour_of(iso(_period_start(period.start, "day"))))
    last = bisect_left(hours, hour_of(iso(period.end)))
    days: dict[str, int] = {}
    for row in found[first:last]:
        days[row.day] = days.get(row.day, 0) + row.calls
    return max(days.values(), default=0)


def _quota(app: AppContext, names: Sequence[str], endpoint: str) -> int | None:
    """The daily quota of an endpoint (an account's ``api_quotas`` setting first); summed over
    the accounts of an --all-accounts report, None when one of them has none."""
    from bankwx_cli.domain import account_settings

    total = 0
    for name in names:
        account = app.store.accounts.get(name)
        overrides = account_settings.value(account, "api_quotas") if account else {}
        quota = overrides.get(endpoint, DAILY_QUOTAS.get(endpoint))
        if quota is None:
            return None
        total += int(quota)
    return total


def _quotas(value: Any) -> dict[str, int]:
    """api_quotas: WeChat path (``/cgi-bin/...``, or without it) -> calls a day (1 or more)."""
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    quotas: dict[str, int] = {}
    for path, number in value.items():
        path = str(path).strip()
        if not path or not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise ValueError(f"'{path}'")
        quotas[path if path.startswith("/") else "/cgi-bin/" + path] = number
    return quotas


def install(registry: Registry) -> None:
    """This area's declarations (bankwx_cli/extensions.py): the api_quotas setting."""
    from bankwx_cli.domain.account_settings import Setting

    registry.setting(
        Setting(
            "api_quotas",
            "json",
            {},
            "Daily quotas of WeChat endpoints for the api report (calls a day); endpoints not "
            "named keep the protocol sheet's defaults.",
            "reports",
            "a JSON object of endpoint to calls a day (1 or more), e.g. "
            '{"message/custom/send": 1000000}',
            _quotas,
        )
    )


# --- agents ---------------------------------------------------------------------------------

AGENT_FIGURES = ("sessions", "first_response_p50_s", "first_response_p90_s", "handling_p50_s",
                 "queue_wait_p50_s", "queue_wait_p90_s", "abandoned", "sla_breaches",
                 "ratings", "rating_avg")  # fmt: skip


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (from_iso(end) - from_iso(start)).total_seconds()


def _nearest(values: list[float], p: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1], 1)


def _agents(app: AppContext, rollups: Rollups, req: Request) -> Outcome:
    """Agent sessions by the period they entered the queue: per agent (waits that ended
    without one under agent null), or per group with --split group. Read from the sessions
    themselves; a session's SLA is its group's as set when it opened (``agent_sessions.sla``,
    m0018), not the group's today."""
    span = req.span
    now = iso(app.clock.now())
    all_periods = periods(span)
    find = period_finder(all_periods)
    groups: dict[tuple[str, str | None], list[SessionTimes]] = {}
    for session in rollups.agent_sessions(req.accounts, iso(span.since), iso(span.until)):
        entered = session.entered_at
        period = find(entered)
        who = session.group if req.split == "group" else session.agent
        groups.setdefault((period.key, who), []).append(session)
    rows = []
    for period in all_periods:
        found = sorted((k for k in groups if k[0] == period.key), key=lambda k: str(k[1] or ""))
        for key in found:
            sessions = groups[key]
            first = [
                v for s in sessions if (v := _seconds(s.opened_at, s.first_response_at)) is not None
            ]
            handling = [
                v
                for s in sessions
                if s.opened_at and (v := _seconds(s.opened_at, s.closed_at)) is not None
            ]
            waits = [v for s in sessions if (v := _seconds(s.entered_at, s.opened_at)) is not None]
            ratings = [s.rating for s in sessions if s.rating is not None]
            who = key[1]
            rows.append(AgentsRow(
                shown(period.start), req.account,
                agent=None if req.split == "group" else who,
                group=who if req.split == "group" else None,
                sessions=len(sessions),
                first_response_p50_s=_nearest(first, 50),
                first_response_p90_s=_nearest(first, 90),
                handling_p50_s=_nearest(handling, 50),
                queue_wait_p50_s=_nearest(waits, 50),
                queue_wait_p90_s=_nearest(waits, 90),
                abandoned=sum(1 for s in sessions if not s.opened_at and s.closed_at),
                sla_breaches=sum(1 for s in sessions if _breached(s, now)),
                ratings=len(ratings),
                rating_avg=round(sum(ratings) / len(ratings), 2) if ratings else None,
            ))  # fmt: skip
    return Outcome(rows, time_series=False)


def _breached(session: SessionTimes, now: str) -> bool:
    """The first response came after the SLA the group had at opening, or never came
    within it."""
    opened, sla = session.opened_at, session.sla
    if not opened or sla is None:
        return False
    first = _seconds(opened, session.first_response_at)
    if first is not None:
        return bool(first > sla)
    ended = session.closed_at or now
    waited = _seconds(opened, ended)
    return waited is not None and waited > sla


# --- alerts -----------------------------------------------------------------------------------

ALERT_COUNTS = ("received", "rejected", "duplicates", "suppressed", "deferred", "sent_wechat",
                "delivered", "sms", "failed", "unknown")  # fmt: skip


def _alerts(app: AppContext, rollups: Rollups, req: Request) -> Outcome:
    """What ``alert status`` counts, by the hour of each event's receipt: one row per period
    (``event_type`` null: every type), or per event type with --split type. Counts are exact
    (with --by total, ``alert status``'s for the range); latency percentiles come from
    log-spaced buckets, within 5% of the exact ones."""
    span = req.span
    split = ("event_type",) if req.split == "type" else ()
    sums = rollups.sums("rollup_alerts", req.accounts, span.since_hour, span.until_hour,
                        span.by, split, periods=bounds(span))  # fmt: skip
    hist = rollups.sums("rollup_alert_latency", req.accounts, span.since_hour, span.until_hour,
                        span.by, (*split, "bucket"), periods=bounds(span))  # fmt: skip
    by_key, histograms = _grouped(sums, hist, (*ALERT_COUNTS, "sms_avoided"))
    rows = []
    for period in periods(span):
        for key in _keys_of(by_key, period, split):
            counts = by_key.get(key, dict.fromkeys((*ALERT_COUNTS, "sms_avoided"), 0))
            histogram = histograms.get(key, {})
            rows.append(AlertsRow(
                shown(period.start), req.account,
                event_type=str(key[1] or "") or None if split else None,
                **counts,
                latency_p50_ms=_ms(_status_percentile(histogram, 0.5)),
                latency_p99_ms=_ms(_status_percentile(histogram, 0.99)),
            ))  # fmt: skip
    return Outcome(rows, time_series=True)


def _status_percentile(histogram: Mapping[int, int], share: float) -> float | None:
    """A latency percentile ranked as ``alert status`` ranks it (the value at rank
    ``round(share * n + 0.5)``), as its bucket's middle."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = min(total, max(1, round(share * total + 0.5)))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return middle_of(bucket)
    return None  # pragma: no cover - the ranks add up to total


_BUILDERS: dict[str, Callable[[AppContext, Rollups, Request], Outcome]] = {
    "messages": _messages,
    "followers": _followers,
    "menus": _menus,
    "keywords": _keywords,
    "broadcasts": _broadcasts,
    "api": _api,
    "agents": _agents,
    "alerts": _alerts,
}


# --- backfill ---------------------------------------------------------------------------------

# The receiver counts the log live (domain/routing.py, in its write units): the backfill counts
# what was logged before that began, up to the point m0017 recorded. (False: nothing counts
# live, and the backfill's end moves up to the newest entry.)
LIVE_MESSAGES = True
BATCH = 500


@dataclass(frozen=True)
class Backfilled:
    """What ``report backfill`` counted for one account: log entries, up to which id."""

    account: str
    entries: int
    upto: int

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "entries": self.entries, "upto": self.upto}


def backfill(app: AppContext, account: str | None = None, batch: int = BATCH) -> list[Backfilled]:
    """Count the conversation log's entries from before live counting began into the
    roll-ups (messages, handling times, keyword hits, menu clicks, follows and unfollows), in
    short transactions that each record how far they got: an interrupted run resumes, and a
    run over what is counted changes nothing. ``report.backfill`` on each account."""
    names = [account] if account else list(app.store.accounts.names())
    for name in names:
        accounts.get(app, name)
        require(app, BACKFILL, name)
    rollups = app.store.rollups
    if not LIVE_MESSAGES:
        with app.store.transaction():
            rollups.raise_backfill_to(rollups.last_log_id())
    upto = rollups.backfill_to()
    done = []
    for name in names:
        deploys = app.store.menu_versions.deploy_times(name)
        total = 0
        while True:
            with app.store.transaction():
                after = rollups.backfilled(name)
                entries = rollups.log_batch(name, after, upto, batch)
                if not entries:
                    break
                for entry in entries:
                    count_entry(rollups, name, entry, deploys)
                rollups.set_backfilled(name, entries[-1].id)
            total += len(entries)
        done.append(Backfilled(name, total, upto))
    return done


def count_entry(
    rollups: Rollups, account: str, entry: LogEntry, deploys: Sequence[tuple[str, int]]
) -> None:
    """Add one inbound log entry to the roll-ups, as live counting would have."""
    at, event = entry.at, entry.event
    if entry.state != "done":
        count_claim(rollups, account, at, entry.msg_type, event, retries=entry.deliveries - 1)
        return
    count_outcome(
        rollups, account, at=at, msg_type=entry.msg_type, event=event, key=entry.content,
        route=entry.route, outcome=entry.outcome, handling_ms=entry.handling_ms,
        deliveries=entry.deliveries,
        menu_version=deployed_at(deploys, at) if event in MENU_EVENTS else 0,
    )  # fmt: skip


# --- live counting: what the receiver's write units call (in the unit, never after) ----------
#
# A message is counted under its msg_type and route kind, in the hour of its ``at``. A claim
# (the handler path's first write) counts it under the route kind ``other`` as unanswered; the
# unit that settles the outcome moves it (with the retries it gathered meanwhile) to its route
# kind and outcome's column. So a claim left 'processing' stays counted as unanswered, and
# live counting gives what ``backfill`` gives from the same log.
#
# The counters go to a ``Sink``: ``Rollups`` itself (one upsert per row, in the caller's
# transaction), or a ``Tally``, which sums counts in memory for the length of one write and
# writes each roll-up row once. The receiver's group write sums its outcomes by
# ``count_outcomes``, from each outcome's ``_plan`` (``_add_outcome`` once, into a ``Tally``).


class Sink(Protocol):
    """Where counts go: ``key`` is the roll-up row's key columns, in ``TABLES`` order."""

    def add_at(self, table: str, key: tuple[Any, ...], counts: Mapping[str, int]) -> None: ...

    def add_buckets(self, table: str, key: tuple[Any, ...], buckets: Mapping[int, int]) -> None:
        """A histogram's counts: ``n`` of the row ``(*key, bucket)`` for each bucket."""
        ...


_INDEX = {table: {c: i for i, c in enumerate(counters)} for table, (_, counters) in TABLES.items()}


class Tally:
    """Counts summed in memory for the length of one write, then written by ``write`` in that
    write's transaction: each roll-up row once. ``_plan`` records what one message of an
    outcome adds in one; ``bench/reports`` sums a year of traffic in one."""

    __slots__ = ("_buckets", "_rows")

    def __init__(self) -> None:
        self._rows: dict[tuple[str, tuple[Any, ...]], list[int]] = {}
        # a histogram's counts by bucket, for (table, key but the bucket)
        self._buckets: dict[tuple[str, tuple[Any, ...]], dict[int, int]] = {}

    def add_at(self, table: str, key: tuple[Any, ...], counts: Mapping[str, int]) -> None:
        found = self._rows.get((table, key))
        if found is None:
            found = self._rows[(table, key)] = [0] * len(_INDEX[table])
        index = _INDEX[table]
        for counter, n in counts.items():
            found[index[counter]] += n

    def add_buckets(self, table: str, key: tuple[Any, ...], buckets: Mapping[int, int]) -> None:
        found = self._buckets.get((table, key))
        if found is None:
            self._buckets[(table, key)] = dict(buckets)
        else:
            for bucket, n in buckets.items():
                found[bucket] = found.get(bucket, 0) + n

    def write(self, rollups: Rollups) -> None:
        """Add the summed counts to the roll-ups (inside the caller's transaction)."""
        tables: dict[str, list[tuple[Any, ...]]] = {}
        for (table, key), sums in self._rows.items():
            tables.setdefault(table, []).append((*key, *sums))
        for (table, key), buckets in self._buckets.items():
            tables.setdefault(table, []).extend([(*key, *row) for row in buckets.items()])
        for table, rows in tables.items():
            rollups.add_sums(table, rows)
        self._rows.clear()
        self._buckets.clear()


def deployed_at(deploys: Sequence[tuple[str, int]], at: str) -> int:
    """The menu version deployed last at or before ``at``, from (deployed_at, version) pairs
    oldest first (``MenuVersions.deploy_times``); 0: none was."""
    found = 0
    for when, version in deploys:
        if when > at:
            break
        found = version
    return found


def count_claim(
    rollups: Sink, account: str, at: str, msg_type: str, event: str, retries: int = 0
) -> None:
    """A first delivery claimed, its outcome not settled yet (``Messages.claim``)."""
    if msg_type == "event" and event in JOB_EVENTS:
        return
    rollups.add_at("rollup_messages", (account, hour_of(at), msg_type, "other"),
                   {"inbound": 1, "unanswered": 1, "retries": retries})  # fmt: skip


def count_retry(
    rollups: Sink, account: str, at: str, msg_type: str, event: str, route: str | None
) -> None:
    """Another delivery of a message the store holds (``Messages.claim_again``): ``route`` is
    the stored route when its outcome is settled, None while it is processing."""
    if msg_type == "event" and event in JOB_EVENTS:
        return
    kind = "other" if route is None else route_kind(route)
    rollups.add_at("rollup_messages", (account, hour_of(at), msg_type, kind), {"retries": 1})


@lru_cache(maxsize=4096)
def _settled(msg_type: str, route: str, outcome: str) -> tuple[str, dict[str, int], int | None]:
    """What a first delivery's outcome adds: its route kind, its rollup_messages counts, the
    keyword rule it hit (None: none). The same few routes come again and again: kept. The
    counts are shared: never change them."""
    rule = None
    if route.startswith("rule:") and outcome != "unknown_action":
        rule = int(route.split(":")[1])
    return route_kind(route), message_counts(msg_type, route, outcome, 1, True), rule


def count_outcome(
    rollups: Sink,
    account: str,
    *,
    at: str,
    msg_type: str,
    event: str,
    key: str,
    route: str,
    outcome: str,
    handling_ms: float | None,
    deliveries: int = 1,
    menu_version: int = 0,
    claimed: bool = False,
    qr_scene: str | None = None,
) -> None:
    """A message's final outcome: its column, handling time, keyword rule, menu click, follow
    or unfollow. ``claimed``: a claim counted it before (``count_claim``), with the
    ``deliveries - 1`` retries it had then; ``key``: the event key (a menu key, a VIEW URL, a
    QR scene), as sent; ``menu_version``: the menu deployed at ``at`` (0: none); ``qr_scene``:
    a subscribe's QR scene (the inbound's ``scene``; None: read from the engine's route, which
    a hook that answered the follow may not carry)."""
    if msg_type == "event" and event in JOB_EVENTS:
        return
    hour = hour_of(at)
    retries = max(deliveries - 1, 0)
    if claimed:
        rollups.add_at("rollup_messages", (account, hour, msg_type, "other"),
                       {"inbound": -1, "unanswered": -1, "retries": -retries})  # fmt: skip
    _add_outcome(rollups, (account, hour, msg_type, event, key, route, outcome, menu_version,
                           qr_scene), () if handling_ms is None else (handling_ms,),
                 retries)  # fmt: skip


#: A first delivery's outcome as ``count_outcomes`` sums them: account, hour, msg_type, event,
#: key (a menu event's, else ""), route, outcome, menu version (a menu event's, else 0), QR scene
#: (a subscribe's, as ``count_outcome`` takes it, else None). Messages alike in all of these
#: add to the same roll-up rows (but their handling times' buckets).
Settled = tuple[str, str, str, str, str, str, str, int, str | None]


def outcome_of(
    account: str, at: str, msg_type: str, event: str, key: str, route: str, outcome: str,
    menu_version: int, qr_scene: str | None,
) -> Settled:  # fmt: skip
    """The ``Settled`` of a first delivery settled at once (``count_outcome``'s arguments with
    ``deliveries`` 1 and ``claimed`` false), the fields its counts do not read left out."""
    if msg_type != "event":
        return (account, hour_of(at), msg_type, event, "", route, outcome, 0, None)
    return (account, hour_of(at), msg_type, event, key if event in MENU_EVENTS else "", route,
            outcome, menu_version if event in MENU_EVENTS else 0,
            qr_scene if event == "subscribe" else None)  # fmt: skip


def count_outcomes(rollups: Rollups, outcomes: Mapping[Settled, Sequence[float]]) -> None:
    """``count_outcome`` for many first deliveries settled at once, each ``Settled`` with the
    handling times (ms) of the messages that had it (one message, not timed, when empty): the
    receiver's group write counts a group of a hundred messages as a handful of outcomes, and
    writes each roll-up row once (inside the caller's transaction). What an outcome adds is
    ``_add_outcome``'s for one message (``_plan``), times its messages."""
    sums: dict[tuple[str, tuple[Any, ...]], list[int]] = {}
    histograms: list[tuple[str, tuple[Any, ...]]] = []  # each handling time's histogram
    timed: list[float] = []
    for outcome, handling in outcomes.items():
        rows, histogram = _plan(outcome)
        times = len(handling) or 1
        for row, counts in rows:
            found = sums.get(row)
            if found is None:
                sums[row] = [n * times for n in counts]
            else:  # another outcome of the group adds to the same row
                sums[row] = [a + n * times for a, n in zip(found, counts, strict=True)]
        if histogram is not None and handling:
            histograms += [histogram] * len(handling)
            timed += handling
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for (table, key), summed in sums.items():
        tables.setdefault(table, []).append((*key, *summed))
    for ((table, key), bucket), n in keyed_bucket_counts(histograms, timed).items():
        tables.setdefault(table, []).append((*key, bucket, n))
    for table, table_rows in tables.items():
        rollups.add_sums(table, table_rows)


Plan = tuple[
    tuple[tuple[tuple[str, tuple[Any, ...]], tuple[int, ...]], ...],
    tuple[str, tuple[Any, ...]] | None,
]


@lru_cache(maxsize=4096)
def _plan(outcome: Settled) -> Plan:
    """What one timed message of this outcome adds, as ``_add_outcome`` adds it: each roll-up
    row's (table, key) with its counters in ``TABLES`` order, and the (table, key) of its
    handling-time histogram (None: none). Outcomes repeat (an hour's few routes): kept."""
    if outcome[2] == "event" and outcome[3] in JOB_EVENTS:
        return (), None
    one = Tally()
    _add_outcome(one, outcome, (1.0,), 0)
    rows = tuple((row, tuple(counts)) for row, counts in one._rows.items())
    return rows, next(iter(one._buckets), None)


def _add_outcome(rollups: Sink, outcome: Settled, handling: Sequence[float], retries: int) -> None:
    """The final outcome of as many messages as ``handling`` has handling times (one message,
    not timed, when it is empty): their column, handling times, keyword rule, menu click,
    follow or unfollow (``count_outcome``)."""
    account, hour, msg_type, event, key, route, result, menu_version, qr_scene = outcome
    kind, counts, rule = _settled(msg_type, route, result)
    times = len(handling) or 1
    if retries:
        counts = {**counts, "retries": retries}
    rollups.add_at("rollup_messages", (account, hour, msg_type, kind), _times(counts, times))
    if handling:
        rollups.add_buckets("rollup_handling", (account, hour, msg_type, kind),
                            bucket_counts(handling))  # fmt: skip
    if rule is not None:
        rollups.add_at("rollup_keywords", (account, hour, rule), _times(_HIT, times))
    if msg_type != "event":
        return
    if event in MENU_EVENTS:
        rollups.add_at("rollup_menus", (account, hour, menu_version, event, key),
                       _times(_CLICK, times))  # fmt: skip
    elif event == "subscribe":
        qr = route.partition("qrscene=")[2] if qr_scene is None else qr_scene
        scene = SCENE_QR if qr else SCENE_UNKNOWN
        rollups.add_at("rollup_followers", (account, hour, scene, qr), _times(_NEW, times))
    elif event == "unsubscribe":
        rollups.add_at("rollup_followers", (account, hour, SCENE_UNKNOWN, ""),
                       _times(_LOST, times))  # fmt: skip


def _times(counts: Mapping[str, int], times: int) -> Mapping[str, int]:
    return counts if times == 1 else {counter: n * times for counter, n in counts.items()}


_HIT, _CLICK, _NEW, _LOST = {"hits": 1}, {"clicks": 1}, {"new": 1}, {"lost": 1}


def count_retry_of(rollups: Rollups, message_id: int) -> None:
    """``count_retry`` for the entry with this id, read in the unit (after ``claim_again``)."""
    found = rollups.message(message_id)
    if found is None:
        return
    route = found.route if found.state == "done" else None
    count_retry(rollups, found.account, found.at, found.msg_type, found.event, route)


def count_outcome_of(
    rollups: Rollups,
    message_id: int,
    *,
    key: str = "",
    menu_version: int = 0,
    qr_scene: str | None = None,
    claimed: bool = True,
) -> None:
    """``count_outcome`` for the entry with this id as the unit just settled it (after
    ``Messages.finish`` or ``set_outcome``): its route, outcome, handling time and deliveries
    read back in the unit."""
    found = rollups.message(message_id)
    if found is None:
        return
    count_outcome(
        rollups, found.account, at=found.at, msg_type=found.msg_type, event=found.event,
        key=key, route=found.route, outcome=found.outcome, handling_ms=found.handling_ms,
        deliveries=found.deliveries, menu_version=menu_version, claimed=claimed,
        qr_scene=qr_scene,
    )  # fmt: skip
