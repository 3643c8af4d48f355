"""Reports' tables: the hourly roll-ups (m0017) and the reads of a report.

A roll-up row is per account (``appid`` for the API's) and UTC hour (``hour``:
``YYYY-MM-DDTHH:00:00Z``), with no openid and no text. Every write adds to counters
(``INSERT ... ON CONFLICT DO UPDATE SET c = c + excluded.c``) and joins the caller's
transaction: a roll-up is written in the transaction of the change it counts, never in one of
its own, so a unit that runs twice (its first run rolled back) counts once.

Reads group the hours into a report's periods in SQL (an Asia/Shanghai hour is a UTC hour, +8,
no daylight saving): days, weeks (Monday first) and months are sums of hours.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain
from typing import Any

from bankwx_cli.models.followers import Profile
from bankwx_cli.models.reports import (
    HourCalls,
    LogEntry,
    LoggedMessage,
    RuleShown,
    SessionTimes,
    Sums,
    UnmatchedText,
    bucket_of,
)
from bankwx_cli.storage.db import Database

# What ``alert status`` counts, per event (m0018's rollup_alerts): events received, rejected
# and duplicates noted, recipients suppressed, deferred (for quiet hours), accepted by WeChat
# (sent_wechat) and delivered, events gone by SMS, failed or unknown, and events WeChat
# carried (sent or delivered: an SMS avoided).
ALERT_COUNTERS = ("received", "rejected", "duplicates", "suppressed", "deferred",
                  "sent_wechat", "delivered", "sms", "failed", "unknown",
                  "sms_avoided")  # fmt: skip

# table -> (key columns, counter columns)
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "rollup_messages": (
        ("account", "hour", "msg_type", "route"),
        (
            "inbound",
            "retries",
            "replied",
            "default_reply",
            "late",
            "late_no_window",
            "unanswered",
            "failed",
            "no_reply",
        ),
    ),
    "rollup_handling": (("account", "hour", "msg_type", "route", "bucket"), ("n",)),
    "rollup_followers": (("account", "hour", "scene", "qr_scene"), ("new", "lost")),
    "rollup_menus": (("account", "hour", "menu_version", "event", "key"), ("clicks",)),
    "rollup_keywords": (("account", "hour", "rule_id"), ("hits",)),
    "rollup_api": (("appid", "hour", "endpoint"), ("calls", "errors", "retries")),
    "rollup_api_latency": (("appid", "hour", "endpoint", "bucket"), ("n",)),
    "rollup_agents": (
        ("account", "hour", "group_id", "agent_id"),
        ("sessions", "abandoned", "sla_breaches", "ratings", "rating_sum"),
    ),
    "rollup_agent_times": (
        ("account", "hour", "group_id", "agent_id", "measure", "bucket"),
        ("n",),
    ),
    "rollup_alerts": (("account", "hour", "event_type"), ALERT_COUNTERS),
    "rollup_alert_latency": (("account", "hour", "event_type", "bucket"), ("n",)),
}

# A report's period, as SQL over the UTC ``hour`` column: the key the domain makes for it.
PERIODS: dict[str, str] = {
    "hour": "hour",
    "day": "strftime('%Y-%m-%d', hour, '+8 hours')",
    "week": "date(hour, '+8 hours', '-6 days', 'weekday 1')",
    "month": "strftime('%Y-%m', hour, '+8 hours')",
    "total": "''",
}

BACKFILL_TO = "rollups.backfill_to"
BACKFILLED = "rollups.backfilled:"  # + account: the last log id counted


def hour_of(at: str) -> str:
    """The roll-up hour of an ISO UTC time (``2026-03-01T05:12:00.000000Z``)."""
    return at[:13] + ":00:00Z"


def _upsert_sql(table: str) -> str:
    keys, counters = TABLES[table]
    columns = (*keys, *counters)
    adds = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - names from TABLES
        f"VALUES ({', '.join(':' + c for c in columns)}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {adds}"
    )


_UPSERTS = {table: _upsert_sql(table) for table in TABLES}


_WIDTHS = {table: len(keys) + len(counters) for table, (keys, counters) in TABLES.items()}
SUM_ROWS = (16, 8, 4, 2, 1)  # rows in one statement of ``Rollups.add_sums`` (powers of two)


@lru_cache(maxsize=64)
def _upsert_rows_sql(table: str, count: int, width: int) -> str:
    """``count`` rows of ``width`` positional values in one upsert."""
    keys, counters = TABLES[table]
    adds = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters)
    values = ", ".join(["(" + ", ".join("?" * width) + ")"] * count)
    return (
        f"INSERT INTO {table} ({', '.join((*keys, *counters))}) "  # noqa: S608 - TABLES' names
        f"VALUES {values} ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {adds}"
    )


def _in(column: str, name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    clause = f"{column} IN (SELECT value FROM json_each(:{name}))"  # noqa: S608 - our names
    return clause, {name: json.dumps(list(values))}


class Rollups:
    """The roll-up tables: counts added by the writers, sums read by reports."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- writes (inside the caller's transaction) ---------------------------------------------

    def add(self, table: str, keys: Mapping[str, Any], counts: Mapping[str, int]) -> None:
        """Add counts to one roll-up row (the counters not given add 0)."""
        key_names, counters = TABLES[table]
        row = {k: keys[k] for k in key_names}
        row.update({c: int(counts.get(c, 0)) for c in counters})
        self.db.execute(_UPSERTS[table], row)

    def add_at(self, table: str, key: tuple[Any, ...], counts: Mapping[str, int]) -> None:
        """``add`` with the key columns given in ``TABLES`` order."""
        self.add(table, dict(zip(TABLES[table][0], key, strict=True)), counts)

    def add_buckets(self, table: str, key: tuple[Any, ...], buckets: Mapping[int, int]) -> None:
        """A histogram's counts (a table keyed by ``key`` then ``bucket``, counting ``n``)."""
        self.add_sums(table, [(*key, *row) for row in buckets.items()])

    def add_sums(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Add many rows, each its key columns then every counter, in ``TABLES`` order (the
        receiver's group write: a few rows for a hundred messages), by multi-row statements of
        ``SUM_ROWS`` rows, the largest that fit first: a handful of statements for SQLite to
        keep prepared (one of every length would crowd the connection's statement cache and
        be compiled again and again). Inside the caller's transaction."""
        width, at, left = _WIDTHS[table], 0, len(rows)
        for size in SUM_ROWS:
            while left >= size:
                params = list(chain.from_iterable(rows[at : at + size]))
                self.db.execute_positional(_upsert_rows_sql(table, size, width), params)
                at, left = at + size, left - size

    def add_many(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Add several rows (each with its keys and counters, missing counters 0)."""
        key_names, counters = TABLES[table]
        sql = _UPSERTS[table]
        with self.db.transaction():
            for given in rows:
                row = {k: given[k] for k in key_names}
                row.update({c: int(given.get(c, 0)) for c in counters})
                self.db.execute(sql, row)

    # --- the follower sync's follows and unfollows (in the sync's own transactions) ----------
    #
    # Each follow and unfollow is counted once, by whichever sees it first. The engine counts
    # the subscribe and unsubscribe events it logs (and records them in ``follower_state``);
    # the sync counts what the engine did not see: a follower whose first profile since being
    # listed (anew) it saves, unless the engine saw the follow, is new in the hour of the
    # profile's subscribe_time (else the sync's) under its subscribe_scene; one found gone,
    # unless the engine saw the unfollow, is lost in the hour of the sync under the scene of
    # the follow it ends.

    def _rows_of(self, table: str, account: str, openids: Sequence[str], columns: str) -> Any:
        clause, params = _in("openid", "openids", openids)
        params["a"] = account
        return self.db.all(
            f"SELECT openid, {columns} FROM {table} WHERE account = :a AND {clause}",  # noqa: S608
            params,
        )

    def count_sync_follows(
        self, account: str, infos: Sequence[Profile], at: str, listed: bool = False
    ) -> None:
        """Count the new followers among profiles about to be saved (call before saving):
        those listed without a profile yet (``listed``: every one, a first load's page)."""
        openids = [i.openid for i in infos if i.subscribed]
        if not openids:
            return
        fresh = set(openids) if listed else {
            str(r[0]) for r in self._rows_of("followers", account, openids, "profile_at")
            if r[1] is None
        }  # fmt: skip
        seen = {
            str(r[0])
            for r in self._rows_of("follower_state", account, openids, "subscribed")
            if r[1] == 1
        }
        counts: dict[tuple[str, str, str], int] = {}
        for info in infos:
            openid = info.openid
            if openid not in fresh or openid in seen or not info.subscribed:
                continue
            stamp = int(info.subscribe_time or 0)
            hour = (
                datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:00:00Z")
                if stamp else hour_of(at)
            )  # fmt: skip
            scene = str(info.subscribe_scene or "") or "unknown"
            qr = str(info.qr_scene_str or "") or str(info.qr_scene or "")
            key = (hour, scene, qr if qr not in ("", "0") else "")
            counts[key] = counts.get(key, 0) + 1
        for (hour, scene, qr), n in counts.items():
            keys = {"account": account, "hour": hour, "scene": scene, "qr_scene": qr}
            self.add("rollup_followers", keys, {"new": n})

    def count_sync_losses(self, account: str, openids: Sequence[str], at: str) -> None:
        """Count followers the sync found gone (call before marking them: those it still
        held subscribed), unless the engine saw the unfollow."""
        if not openids:
            return
        rows = self._rows_of("followers", account, openids,
                             "subscribed, subscribe_scene, qr_scene, qr_scene_str")  # fmt: skip
        unfollowed = {
            str(r[0])
            for r in self._rows_of("follower_state", account, openids, "subscribed")
            if r[1] == 0
        }
        counts: dict[tuple[str, str], int] = {}
        for openid, subscribed, scene, qr_scene, qr_scene_str in rows:
            if subscribed != 1 or openid in unfollowed:
                continue
            qr = str(qr_scene_str or "") or (str(qr_scene) if qr_scene else "")
            key = (str(scene or "") or "unknown", qr)
            counts[key] = counts.get(key, 0) + 1
        for (scene, qr), n in counts.items():
            keys = {"account": account, "hour": hour_of(at), "scene": scene, "qr_scene": qr}
            self.add("rollup_followers", keys, {"lost": n})

    # --- the alerts' count of what the store held (m0018; tests) --------------------------------

    def recount_alerts(self) -> None:
        """Count every alert event, recipient, rejection and duplicate the store holds into
        rollup_alerts and rollup_alert_latency afresh, as live counting adds them (call in a
        transaction: the migration's, that begins live counting)."""
        self.db.execute("DELETE FROM rollup_alerts")
        self.db.execute("DELETE FROM rollup_alert_latency")
        parts = [(_event_row(r), 1) for r in self.db.all(_EVENT_PART)]
        parts += [(_recipient_row(r), 1) for r in self.db.all(_RECIPIENT_PART)]
        parts += [
            (noted_part(str(r[0]), str(r[1]), r[2], str(r[3])), 1)
            for r in self.db.all("SELECT account, received_at, type, status FROM alert_rejections")
        ]
        _add_parts(self.db, parts)

    # --- reads (inside a snapshot: Database.reading) -------------------------------------------

    def sums(
        self,
        table: str,
        owners: Sequence[str],
        since: str,
        until: str,
        by: str,
        split: Sequence[str] = (),
        where: Mapping[str, Any] | None = None,
        periods: Sequence[tuple[str, str, str]] | None = None,
    ) -> list[Sums]:
        """Counters summed per period (``period``: the key of PERIODS[by]) and split column
        (``split``: their values, in this order), of the owners' rows (accounts, or appids for
        the API's tables) in [since, until).

        ``periods``: the periods' keys and bounds (key, first hour, end hour), read one after
        another, each an indexed range of hours summed without date arithmetic on every row
        (three times faster over a year of hourly histograms than grouping by PERIODS[by])."""
        key_names, counters = TABLES[table]
        owner = key_names[0]
        for column in (*split, *(where or {})):
            if column not in key_names:
                raise ValueError(f"{table} has no column {column}")
        clause, params = _in(owner, "owners", owners)
        conditions = [clause, "hour >= :since", "hour < :until"]
        params.update(since=since, until=until)
        for i, (column, value) in enumerate((where or {}).items()):
            conditions.append(f"{column} = :w{i}")
            params[f"w{i}"] = value
        sums = ", ".join(f"sum({c}) AS {c}" for c in counters)
        at = 1 + len(split)  # the first counter's column
        if periods is not None:
            selected = ", ".join([":period AS period", *split, sums])
            grouped = f" GROUP BY {', '.join(split)}" if split else ""
            sql = (
                f"SELECT {selected} FROM {table} "  # noqa: S608 - names from TABLES
                f"WHERE {' AND '.join(conditions)}{grouped}"
            )
            found = []
            for key, first, end in periods:
                params.update(period=key, since=max(first, since), until=min(end, until))
                found += [
                    Sums(key, r[1:at], r[at:], counters)
                    for r in self.db.all(sql, params)
                    if r[at] is not None  # no row in the period (and no split: one of nulls)
                ]
            return found
        groups = ", ".join(["period", *split])
        selected = ", ".join([f"{PERIODS[by]} AS period", *split, sums])
        sql = (
            f"SELECT {selected} FROM {table} "  # noqa: S608 - names from TABLES and PERIODS
            f"WHERE {' AND '.join(conditions)} GROUP BY {groups}"
        )
        return [Sums(str(r[0]), r[1:at], r[at:], counters) for r in self.db.all(sql, params)]

    def daily_calls(
        self, appids: Sequence[str], since: str, until: str, whole_days: bool = False
    ) -> list[HourCalls]:
        """API calls per endpoint, Asia/Shanghai day and hour (for the daily quota) in
        [since, until); ``whole_days``: one row per endpoint and day instead, its ``hour`` the
        day's first hour with calls (for periods that end at midnight, or at ``until``)."""
        clause, params = _in("appid", "owners", appids)
        params.update(since=since, until=until)
        day = "strftime('%Y-%m-%d', hour, '+8 hours')"
        hour, group = ("min(hour)", "day") if whole_days else ("hour", "hour")
        sql = (
            f"SELECT endpoint, {day} AS day, {hour} AS hour, "  # noqa: S608
            f"sum(calls) AS calls FROM rollup_api WHERE {clause} AND hour >= :since "
            f"AND hour < :until GROUP BY endpoint, {group}"
        )
        return [
            HourCalls(str(r["endpoint"]), str(r["day"]), str(r["hour"]), int(r["calls"]))
            for r in self.db.all(sql, params)
        ]

    # --- what the backfill reads and records ---------------------------------------------------

    def backfill_to(self) -> int:
        """The log id live counting starts after (recorded by the migration)."""
        value = self.db.scalar("SELECT value FROM meta WHERE key = :k", {"k": BACKFILL_TO})
        return int(value or 0)

    def raise_backfill_to(self, point: int) -> None:
        """Move the backfill's end forward (while nothing counts the log live)."""
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (:k, :v) ON CONFLICT (key) DO UPDATE SET "
            "value = CASE WHEN CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER) "
            "THEN excluded.value ELSE meta.value END",
            {"k": BACKFILL_TO, "v": str(point)},
        )

    def backfilled(self, account: str) -> int:
        value = self.db.scalar("SELECT value FROM meta WHERE key = :k", {"k": BACKFILLED + account})
        return int(value or 0)

    def set_backfilled(self, account: str, last_id: int) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (:k, :v) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            {"k": BACKFILLED + account, "v": str(last_id)},
        )

    def last_log_id(self) -> int:
        return int(self.db.scalar("SELECT coalesce(max(id), 0) FROM messages") or 0)

    def log_batch(self, account: str, after: int, upto: int, limit: int) -> list[LogEntry]:
        """The account's inbound log entries with ids in (after, upto], oldest first."""
        return [
            LogEntry(
                id=int(r["id"]),
                msg_type=str(r["msg_type"]),
                event=str(r["event"] or ""),
                content=str(r["content"] or ""),
                route=str(r["route"] or ""),
                outcome=str(r["outcome"] or ""),
                handling_ms=None if r["handling_ms"] is None else float(r["handling_ms"]),
                deliveries=int(r["deliveries"] or 1),
                state=str(r["state"]),
                at=str(r["at"]),
            )
            for r in self.db.all(
                "SELECT id, msg_type, event, content, route, outcome, handling_ms, deliveries, "
                "state, at FROM messages WHERE id > :after AND id <= :upto "
                "AND account = :account AND direction = 'in' ORDER BY id LIMIT :limit",
                {"account": account, "after": after, "upto": upto, "limit": limit},
            )
        ]

    def unmatched(self, accounts: Sequence[str], since: str, until: str) -> list[UnmatchedText]:
        """Inbound texts answered by the default reply in [since, until) (masked when
        logged)."""
        found: list[UnmatchedText] = []
        for account in accounts:
            found += [
                UnmatchedText(str(r["at"]), str(r["openid"]), str(r["content"] or ""))
                for r in self.db.all(
                    "SELECT at, openid, content FROM messages WHERE account = :a "
                    "AND at >= :since AND at < :until AND direction = 'in' "
                    "AND msg_type = 'text' AND route = 'default'",
                    {"a": account, "since": since, "until": until},
                )
            ]
        return found

    def oldest_text_at(self, accounts: Sequence[str]) -> str | None:
        """When the oldest inbound text of these accounts' log arrived (None: there is none)."""
        found = [
            self.db.scalar(
                "SELECT min(at) FROM messages WHERE account = :a AND direction = 'in' "
                "AND msg_type = 'text'",
                {"a": a},
            )
            for a in accounts
        ]
        kept = [str(f) for f in found if f is not None]
        return min(kept) if kept else None

    def message(self, message_id: int) -> LoggedMessage | None:
        """What live counting needs of one log entry (a point read by its id)."""
        row = self.db.one(
            "SELECT account, at, msg_type, event, state, route, outcome, handling_ms, "
            "deliveries FROM messages WHERE id = :id",
            {"id": message_id},
        )
        if row is None:
            return None
        handling = row["handling_ms"]
        return LoggedMessage(
            str(row["account"]), str(row["at"]), str(row["msg_type"]), str(row["event"] or ""),
            str(row["state"]), str(row["route"] or ""), str(row["outcome"] or ""),
            None if handling is None else float(handling), int(row["deliveries"] or 1),
        )  # fmt: skip

    def menu_content(self, account: str, version: int) -> str | None:
        value = self.db.scalar(
            "SELECT content FROM menu_versions WHERE account = :a AND version = :v",
            {"a": account, "v": version},
        )
        return None if value is None else str(value)

    def keyword_rules(self, accounts: Sequence[str]) -> dict[int, RuleShown]:
        """Rules by id (removed ones too, when the store keeps them: ``removed_at``)."""
        clause, params = _in("account", "owners", accounts)
        rows = self.db.all(f"SELECT * FROM keyword_rules WHERE {clause}", params)  # noqa: S608
        return {
            int(r["id"]): RuleShown(
                int(r["id"]), str(r["pattern"]), str(r["match"]), r["action"],
                r["removed_at"] if "removed_at" in r.keys() else None,  # noqa: SIM118 - a Row
            )
            for r in rows
        }  # fmt: skip

    def broadcasts(self, accounts: Sequence[str], since: str, until: str) -> list[int]:
        """Ids of the broadcasts sent (``started_at``), or created when unsent, in the range."""
        clause, params = _in("account", "owners", accounts)
        params.update(since=since, until=until)
        rows = self.db.all(
            "SELECT id FROM broadcasts WHERE "  # noqa: S608 - a fixed clause
            f"{clause} AND coalesce(started_at, created_at) >= :since "
            "AND coalesce(started_at, created_at) < :until "
            "ORDER BY coalesce(started_at, created_at), id",
            params,
        )
        return [int(r[0]) for r in rows]

    def agent_sessions(self, accounts: Sequence[str], since: str, until: str) -> list[SessionTimes]:
        """Agent sessions that entered the queue in [since, until), with their agent's and
        group's names and the SLA (seconds) their group had when they opened."""
        clause, params = _in("s.account", "owners", accounts)
        params.update(since=since, until=until)
        rows = self.db.all(
            "SELECT s.entered_at, s.opened_at, s.closed_at, s.first_response_at, s.rating, "  # noqa: S608
            "a.name AS agent, g.name AS grp, s.sla AS sla FROM agent_sessions s "
            "LEFT JOIN agents a ON a.id = s.agent_id "
            "LEFT JOIN agent_groups g ON g.id = s.group_id "
            f"WHERE {clause} AND s.entered_at >= :since AND s.entered_at < :until",
            params,
        )
        return [
            SessionTimes(
                str(r["entered_at"]), r["opened_at"], r["closed_at"], r["first_response_at"],
                None if r["rating"] is None else int(r["rating"]), r["agent"], r["grp"],
                None if r["sla"] is None else int(r["sla"]),
            )
            for r in rows
        ]  # fmt: skip

    def appids(self, accounts: Sequence[str]) -> dict[str, str]:
        """appid -> account name."""
        clause, params = _in("name", "owners", accounts)
        rows = self.db.all(f"SELECT appid, name FROM accounts WHERE {clause}", params)  # noqa: S608
        return {str(r[0]): str(r[1]) for r in rows}


# --- alerts: what each change of an event or a recipient adds (m0018) -------------------------
#
# An event adds to the hour of its receipt and its type: received, and its state's figures
# (sms: gone by SMS; failed; unknown; sms_avoided: WeChat carried it). A recipient adds to its
# event's row: suppressed, deferred, sent_wechat (WeChat accepted it: a msgid), delivered, and
# its latency (intake to acceptance, not deferred) to rollup_alert_latency. A change subtracts
# what the row added before and adds what it adds after, in the change's transaction; so the
# roll-ups always hold what ``alert status`` would count over the same hours.


@dataclass(frozen=True)
class AlertPart:
    """What one event, one recipient or one rejection adds to the alerts' roll-ups."""

    account: str
    hour: str
    event_type: str
    counts: tuple[tuple[str, int], ...]
    bucket: int | None = None  # the recipient's latency bucket, when counted


def event_part(
    account: str, received_at: str, type_: str, state: str, channel: str | None
) -> AlertPart:
    counts = {"received": 1, "sms": int(channel == "sms"), "failed": int(state == "failed"),
              "unknown": int(state == "unknown"),
              "sms_avoided": int(state in ("sent", "delivered"))}  # fmt: skip
    return AlertPart(account, hour_of(received_at), type_, _nonzero(counts))


def recipient_part(
    account: str, received_at: str, type_: str, received_ts: float, state: str,
    msgid: str | None, deferred: bool, accepted_ts: float | None,
) -> AlertPart:  # fmt: skip
    counts = {
        "suppressed": int(state == "suppressed"),
        "deferred": int(bool(deferred)),
        "sent_wechat": int(msgid is not None),
        "delivered": int(state == "delivered"),
    }
    bucket = None
    if accepted_ts is not None and not deferred:
        bucket = bucket_of(max(0.0, (float(accepted_ts) - float(received_ts)) * 1000))
    return AlertPart(account, hour_of(received_at), type_, _nonzero(counts), bucket)


def noted_part(account: str, at: str, type_: str | None, status: str) -> AlertPart:
    """A rejected or duplicate event (``status``: rejected or duplicate)."""
    column = "duplicates" if status == "duplicate" else "rejected"
    return AlertPart(account, hour_of(at), type_ or "", ((column, 1),))


def _nonzero(counts: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple((k, v) for k, v in counts.items() if v)


_EVENT_PART = "SELECT account, received_at, type, state, channel FROM alert_events"
_RECIPIENT_PART = (
    "SELECT e.account, e.received_at, e.type, e.received_ts, r.state, r.msgid, r.deferred, "
    "r.accepted_ts FROM alert_recipients r JOIN alert_events e ON e.id = r.event"
)


def _event_row(row: Any) -> AlertPart:
    return event_part(str(row[0]), str(row[1]), str(row[2]), str(row[3]), row[4])


def _recipient_row(row: Any) -> AlertPart:
    return recipient_part(str(row[0]), str(row[1]), str(row[2]), float(row[3]), str(row[4]),
                          row[5], bool(row[6]), row[7])  # fmt: skip


class AlertRollups:
    """The alerts' roll-up writes, for the alerts' storage: read what a row adds before and
    after a change (``event``, ``recipient``, ``of_unit``), then ``moved(before, after)``;
    all inside the change's transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def event(self, row_id: int) -> list[AlertPart]:
        row = self.db.one(_EVENT_PART + " WHERE id = :id", {"id": row_id})
        return [] if row is None else [_event_row(row)]

    def recipient(self, event: int, openid: str) -> list[AlertPart]:
        row = self.db.one(
            _RECIPIENT_PART + " WHERE r.event = :e AND r.openid = :o", {"e": event, "o": openid}
        )
        return [] if row is None else [_recipient_row(row)]

    def of_unit(self, unit_id: int) -> list[AlertPart]:
        rows = self.db.all(_RECIPIENT_PART + " WHERE r.unit_id = :u", {"u": unit_id})
        return [_recipient_row(r) for r in rows]

    def moved(self, before: Sequence[AlertPart], after: Sequence[AlertPart]) -> None:
        """Add what the rows add after a change, less what they added before."""
        _add_parts(self.db, [(p, -1) for p in before] + [(p, 1) for p in after])

    def noted(self, account: str, at: str, type_: str | None, status: str) -> None:
        _add_parts(self.db, [(noted_part(account, at, type_, status), 1)])


def _add_parts(db: Database, parts: Sequence[tuple[AlertPart, int]]) -> None:
    """Add the parts (each times its sign) to rollup_alerts and rollup_alert_latency, netted
    per row; rows whose net is nothing are not written."""
    counts: dict[tuple[str, str, str], dict[str, int]] = {}
    latency: dict[tuple[str, str, str, int], int] = {}
    for part, sign in parts:
        keys = (part.account, part.hour, part.event_type)
        into = counts.setdefault(keys, {})
        for column, n in part.counts:
            into[column] = into.get(column, 0) + sign * n
        if part.bucket is not None:
            latency[(*keys, part.bucket)] = latency.get((*keys, part.bucket), 0) + sign
    for (account, hour, event_type), added in counts.items():
        if any(added.values()):
            row: dict[str, Any] = {"account": account, "hour": hour, "event_type": event_type}
            row.update({c: added.get(c, 0) for c in ALERT_COUNTERS})
            db.execute(_UPSERTS["rollup_alerts"], row)
    for (account, hour, event_type, bucket), n in latency.items():
        if n:
            db.execute(_UPSERTS["rollup_alert_latency"], {"account": account, "hour": hour,
                       "event_type": event_type, "bucket": bucket, "n": n})  # fmt: skip
