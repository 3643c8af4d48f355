"""For random traffic written through the engine's storage calls, every figure of the messages
report equals a bare SQL query over the log (percentiles within 5%)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reportkit import answered, report, utc

from bankwx_cli.clock import iso
from bankwx_cli.context import AppContext
from bankwx_cli.domain import reports
from bankwx_cli.models.messages import InboundRow

START = utc("2026-02-28T00:00")
ROUTES = ("default", "rule:3", "rule:4:action:balance", "event:click", "agent", "error",
          "unknown:shortvideo", "trial:scan")  # fmt: skip
entry = st.fixed_dictionaries({
    "minute": st.integers(0, 5 * 24 * 60 - 1),
    "msg_type": st.sampled_from(("text", "image", "event")),
    "outcome": st.sampled_from(sorted(reports.OUTCOMES)),
    "route": st.sampled_from(ROUTES),
    "handling_ms": st.floats(0.5, 5000, allow_nan=False),
    "deliveries": st.integers(1, 3),
})  # fmt: skip


def _write(app: AppContext, entries: list[dict[str, Any]]) -> None:
    db = app.store.db
    with app.store.transaction():
        for table in ("messages", "rollup_messages", "rollup_handling", "rollup_keywords"):
            db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
        db.execute("DELETE FROM meta WHERE key LIKE 'rollups.%'")
        for i, e in enumerate(entries):
            at = iso(START + timedelta(minutes=e["minute"]))
            row = {"account": "main", "openid": f"o{i}", "msg_type": e["msg_type"], "event": "",
                   "content": "", "msg_id": str(i), "dedup_key": f"k{i}", "at": at,
                   "claimed_at": 0.0}  # fmt: skip
            if e["outcome"] == "":  # a claim still processing
                app.store.messages.claim(InboundRow(**row), stale_before=-1.0)
            else:
                answered(
                    app,
                    {
                        **row,
                        "reply": None,
                        "route": e["route"],
                        "outcome": e["outcome"],
                        "handling_ms": e["handling_ms"],
                    },
                )
            for _ in range(e["deliveries"] - 1):
                app.store.messages.claim_again(InboundRow(**row), stale_before=-1.0)
        # this log was written by storage calls alone (no live counting): backfill counts it all
        app.store.rollups.raise_backfill_to(app.store.rollups.last_log_id())


def _expected(app: AppContext, day: str) -> dict[str, Any]:
    """The day's figures by a bare query over the log."""
    rows = app.store.db.all(
        "SELECT state, outcome, route, handling_ms, deliveries FROM messages "
        "WHERE account = 'main' AND direction = 'in' "
        "AND strftime('%Y-%m-%d', at, '+8 hours') = :day",
        {"day": day},
    )
    found: dict[str, Any] = dict.fromkeys(reports.MESSAGE_COLUMNS, 0)
    handled = []
    for state, outcome, route, handling_ms, deliveries in rows:
        column = reports.OUTCOMES[outcome] if state == "done" else "unanswered"
        found["inbound"] += 1
        found["retries"] += deliveries - 1
        found[column] += 1
        found["default_reply"] += column == "replied" and route == "default"
        if state == "done" and handling_ms is not None:
            handled.append(handling_ms)
    handled.sort()
    for p in (50, 90, 99):
        found[f"p{p}_ms"] = handled[max(1, math.ceil(p / 100 * len(handled))) - 1] if handled \
            else None  # fmt: skip
    return found


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture],
          deadline=None)  # fmt: skip
@given(st.lists(entry, max_size=40))
def test_every_figure_is_the_logs(app: AppContext, entries: list[dict[str, Any]]) -> None:
    _write(app, entries)
    reports.backfill(app)
    rows = report(app, "messages", account="main", since="2026-02-28T08:00",
                  until="2026-03-05T08:00")  # fmt: skip
    assert len(rows) == 6  # the range cuts the first and the last Shanghai day
    for row in rows:
        expected = _expected(app, row["period"][:10])
        for column in reports.MESSAGE_COLUMNS:
            assert row[column] == expected[column], (row["period"], column)
        for p in (50, 90, 99):
            exact, found = expected[f"p{p}_ms"], row[f"p{p}_ms"]
            if exact is None:
                assert found is None
            else:
                assert abs(found - exact) <= 0.05 * exact + 0.05


def _live(app: AppContext, entries: list[dict[str, Any]], fast: list[bool]) -> None:
    """What the receiver's units count for the same traffic, under the account 'card': a
    claim, retries while processing, the outcome, retries after it (or the fast path's one
    write and its retries)."""
    rollups = app.store.rollups
    with app.store.transaction():
        for e, quick in zip(entries, fast, strict=True):
            at = iso(START + timedelta(minutes=e["minute"]))
            kind, retries = e["msg_type"], e["deliveries"] - 1
            if e["outcome"] == "":
                reports.count_claim(rollups, "card", at, kind, "")
                for _ in range(retries):
                    reports.count_retry(rollups, "card", at, kind, "", None)
                continue
            before = 0 if quick else retries // 2
            if not quick:
                reports.count_claim(rollups, "card", at, kind, "")
                for _ in range(before):
                    reports.count_retry(rollups, "card", at, kind, "", None)
            reports.count_outcome(
                rollups, "card", at=at, msg_type=kind, event="", key="", route=e["route"],
                outcome=e["outcome"], handling_ms=e["handling_ms"], deliveries=1 + before,
                claimed=not quick,
            )  # fmt: skip
            for _ in range(retries - before):
                reports.count_retry(rollups, "card", at, kind, "", e["route"])


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture],
          deadline=None)  # fmt: skip
@given(st.lists(st.tuples(entry, st.booleans()), max_size=30))
def test_live_counting_gives_what_backfill_gives(
    app: AppContext, traffic: list[tuple[dict[str, Any], bool]]
) -> None:
    entries = [e for e, _ in traffic]
    _write(app, entries)
    with app.store.transaction():
        app.store.db.execute("DELETE FROM rollup_messages WHERE account = 'card'")
        app.store.db.execute("DELETE FROM rollup_handling WHERE account = 'card'")
    reports.backfill(app, "main")
    _live(app, entries, [quick for _, quick in traffic])
    for split in (None, "route", "type"):
        options = {"by": "hour", "since": "2026-02-28T08:00", "until": "2026-03-05T08:00",
                   "split": split}  # fmt: skip
        backfilled = report(app, "messages", account="main", **options)
        live = report(app, "messages", account="card", **options)
        assert [{k: v for k, v in r.items() if k != "account"} for r in live] == [
            {k: v for k, v in r.items() if k != "account"} for r in backfilled
        ], split


def test_the_units_counting_by_id_gives_what_backfill_gives(app: AppContext) -> None:
    """The storage calls of the receiver's units, each followed by the count it makes."""
    messages, rollups = app.store.messages, app.store.rollups

    def row(n: int, minute: int, msg_type: str = "text", event: str = "") -> dict[str, Any]:
        return {"account": "main", "openid": f"o{n}", "msg_type": msg_type, "event": event,
                "content": "", "msg_id": str(n), "dedup_key": f"k{n}",
                "at": iso(START + timedelta(minutes=minute)), "claimed_at": 0.0}  # fmt: skip

    with app.store.transaction():
        # the handler path: claim, a retry while it runs, the outcome, a retry after it
        first = row(1, 30)
        claim = messages.claim(InboundRow(**first), stale_before=-1.0)
        reports.count_claim(rollups, "main", first["at"], "text", "")
        messages.claim_again(InboundRow(**first), stale_before=-1.0)
        reports.count_retry_of(rollups, claim.id)
        messages.finish(claim.id, None, "rule:3", "replied", 12.5, None)
        reports.count_outcome_of(rollups, claim.id)
        messages.claim_again(InboundRow(**first), stale_before=-1.0)
        reports.count_retry_of(rollups, claim.id)
        # the fast path: one write, then a retry
        quick = row(2, 90)
        found = answered(app, {**quick, "reply": None, "route": "default", "outcome": "replied",
                               "handling_ms": 3.0})  # fmt: skip
        assert found is not None
        reports.count_outcome_of(rollups, found, claimed=False)
        messages.claim_again(InboundRow(**quick), stale_before=-1.0)
        reports.count_retry_of(rollups, found)
        # a claim left processing, retried once; a menu click settled late
        stuck = row(3, 24 * 60 + 5)
        left = messages.claim(InboundRow(**stuck), stale_before=-1.0)
        reports.count_claim(rollups, "main", stuck["at"], "text", "")
        messages.claim_again(InboundRow(**stuck), stale_before=10**12)
        reports.count_retry_of(rollups, left.id)
        click = row(4, 24 * 60 + 10, "event", "click")
        clicked = messages.claim(InboundRow(**click), stale_before=-1.0)
        reports.count_claim(rollups, "main", click["at"], "event", "click")
        messages.finish(clicked.id, None, "event:click", "unhandled_key", 4100.0, None)
        reports.count_outcome_of(rollups, clicked.id, key="MENU_X")
    options = {"since": "2026-02-28", "until": "2026-03-02", "by": "hour"}
    live = {split: report(app, "messages", account="main", split=split, **options)
            for split in (None, "route", "type")}  # fmt: skip
    live_menus = report(app, "menus", account="main", **options)
    assert live[None][0]["period"] == "2026-02-28T00:00:00+08:00"
    with app.store.transaction():
        for table in ("rollup_messages", "rollup_handling", "rollup_keywords", "rollup_menus"):
            app.store.db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
        app.store.db.execute("DELETE FROM meta WHERE key LIKE 'rollups.%'")
        rollups.raise_backfill_to(rollups.last_log_id())
        # the click's key as the log keeps it (the row above was written without it)
        app.store.db.execute("UPDATE messages SET content = 'MENU_X' WHERE msg_type = 'event'")
    reports.backfill(app, "main")
    for split, rows in live.items():
        assert report(app, "messages", account="main", split=split, **options) == rows, split
    assert report(app, "menus", account="main", **options) == live_menus
    totals = report(app, "messages", account="main", by="total", since="2026-02-28",
                    until="2026-03-02")  # fmt: skip
    assert {k: totals[0][k] for k in ("inbound", "retries", "replied", "default_reply",
                                      "unanswered")} == {
        "inbound": 4, "retries": 4, "replied": 2, "default_reply": 1, "unanswered": 2}  # fmt: skip
