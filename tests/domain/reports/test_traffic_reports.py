"""The messages, keywords, menus and followers reports over traffic sent through the engine,
counted into the roll-ups by ``report backfill``: every number checked."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from reportkit import Traffic, report, shanghai, utc

from bankwx_cli.clock import iso
from bankwx_cli.context import AppContext
from bankwx_cli.domain import keywords, messages, reports
from bankwx_cli.models.messages import InboundRow
from bankwx_cli.models.replies import TextReply
from bankwx_cli.models.reports import UnmatchedRow, bucket_of, middle_of

ZERO = dict.fromkeys(reports.MESSAGE_COLUMNS, 0)
MARCH = {"since": "2026-03-01", "until": "2026-03-03"}


def _rules(app: AppContext) -> tuple[int, int]:
    balance = keywords.add(app, "main", "余额", "contains", reply=TextReply("余额100元"))
    click = keywords.add(app, "main", "MENU_BAL", "click", reply=TextReply("请先绑定"))
    return balance.id, click.id


@pytest.fixture
def traffic_sent(app: AppContext, traffic: Traffic) -> dict[str, Any]:
    """Known traffic around day, hour and UTC-midnight edges; counted by backfill."""
    balance, click = _rules(app)
    traffic.engine.refresh(True)
    traffic.text(shanghai("2026-03-01T23:59"), "余额多少")  # rule, Mar 1
    hello = traffic._inbound("oB", "<Content><![CDATA[hello  world ]]></Content>", "text")
    traffic.send(shanghai("2026-03-02T00:00"), hello)  # default, Mar 2
    traffic.retry_of(shanghai("2026-03-02T00:00"), hello)  # a retry: deliveries 2
    traffic.image(shanghai("2026-03-02T07:59"), openid="oC")  # default (UTC 23:59)
    traffic.event(shanghai("2026-03-02T08:00"), "CLICK", "MENU_BAL")  # UTC midnight: rule
    traffic.event(shanghai("2026-03-02T09:00"), "subscribe", "qrscene_42", openid="oD")
    traffic.event(shanghai("2026-03-02T09:30"), "unsubscribe", openid="oE")
    traffic.event(shanghai("2026-03-02T10:00"), "VIEW", "https://bank.example/a", openid="oD")
    traffic.event(shanghai("2026-03-02T10:00"), "CLICK", "NO_SUCH_KEY", openid="oD")
    traffic.event(shanghai("2026-03-02T10:00"), "MASSSENDJOBFINISH")  # WeChat's: not inbound
    traffic.text(shanghai("2026-03-02T12:00"), "hello world", account="card")
    # a claim whose handler died: still 'processing'
    at = iso(shanghai("2026-03-02T11:00"))
    row = {"account": "main", "openid": "oF", "msg_type": "text", "event": "", "content": "x",
           "msg_id": "77", "dedup_key": "oF:77", "at": at, "claimed_at": 0.0}  # fmt: skip
    with app.store.transaction():
        app.store.messages.claim(InboundRow(**row), stale_before=-1.0)
        if reports.LIVE_MESSAGES:  # what the receiver's claim unit counts
            reports.count_claim(app.store.rollups, "main", at, "text", "")
    done = reports.backfill(app)
    if not reports.LIVE_MESSAGES:  # else the engine counted them as they came
        assert [(d.account, d.entries) for d in done] == [("card", 1), ("main", 10)]
    return {"balance": balance, "click": click}


def _day(rows: list[dict[str, Any]], day: str) -> dict[str, Any]:
    found = [r for r in rows if r["period"].startswith(day)]
    assert len(found) == 1, rows
    return found[0]


def _counts(row: dict[str, Any]) -> dict[str, int]:
    return {k: row[k] for k in reports.MESSAGE_COLUMNS}


def test_messages_by_day_around_midnight_and_utc_midnight(
    app: AppContext, traffic_sent: dict[str, Any]
) -> None:
    rows = report(app, "messages", account="main", **MARCH)
    assert [r["period"] for r in rows] == ["2026-03-01T00:00:00+08:00",
                                           "2026-03-02T00:00:00+08:00"]  # fmt: skip
    assert {r["account"] for r in rows} == {"main"}
    assert _counts(rows[0]) == {**ZERO, "inbound": 1, "replied": 1}
    assert _counts(rows[1]) == {
        **ZERO, "inbound": 8, "retries": 1, "replied": 4, "default_reply": 2,
        "unanswered": 2, "no_reply": 2,
    }  # fmt: skip
    for row in rows:
        assert row["inbound"] == sum(row[c] for c in reports.CATEGORIES)


def test_percentiles_are_the_logs_within_5_percent(
    app: AppContext, traffic_sent: dict[str, Any]
) -> None:
    rows = report(app, "messages", account="main", by="total", **MARCH)
    handled = sorted(
        e.handling_ms
        for e in app.store.messages.all(account="main")
        if e.direction == "in" and e.handling_ms is not None and e.event != "masssendjobfinish"
    )
    for p in (50, 90, 99):
        exact = handled[max(1, math.ceil(p / 100 * len(handled))) - 1]
        assert rows[0][f"p{p}_ms"] == round(middle_of(bucket_of(exact)), 1)
        # within 5%, and the figure's rounding to 0.1 ms (fast answers take a millisecond)
        assert abs(rows[0][f"p{p}_ms"] - exact) <= 0.05 * exact + 0.05


def test_messages_by_hour_and_week_and_month(app: AppContext, traffic_sent: dict[str, Any]) -> None:
    hours = report(app, "messages", account="main", by="hour", since="2026-03-01T23:00",
                   until="2026-03-02T01:00")  # fmt: skip
    assert [(r["period"], r["inbound"]) for r in hours] == [
        ("2026-03-01T23:00:00+08:00", 1),
        ("2026-03-02T00:00:00+08:00", 1),
    ]
    weeks = report(app, "messages", account="main", by="week", since="2026-03-01",
                   until="2026-03-09")  # fmt: skip
    assert [(r["period"], r["inbound"]) for r in weeks] == [
        ("2026-03-01T00:00:00+08:00", 1),  # Sunday: the range cuts the week of Feb 23
        ("2026-03-02T00:00:00+08:00", 8),
    ]
    months = report(app, "messages", account="main", by="month", since="2026-02-01",
                    until="2026-04-01")  # fmt: skip
    assert [(r["period"], r["inbound"]) for r in months] == [
        ("2026-02-01T00:00:00+08:00", 0),
        ("2026-03-01T00:00:00+08:00", 9),
    ]
    assert months[0] == {"period": "2026-02-01T00:00:00+08:00", "account": "main", **ZERO,
                         "p50_ms": None, "p90_ms": None, "p99_ms": None}  # fmt: skip


def test_split_by_type_and_route(app: AppContext, traffic_sent: dict[str, Any]) -> None:
    by_type = report(app, "messages", account="main", by="total", split="type", **MARCH)
    assert {r["msg_type"]: r["inbound"] for r in by_type} == {"event": 5, "image": 1, "text": 3}
    by_route = report(app, "messages", account="main", by="total", split="route", **MARCH)
    assert {r["route"]: (r["inbound"], r["unanswered"]) for r in by_route} == {
        "default": (2, 0), "event": (4, 1), "rule": (2, 0), "other": (1, 1),
    }  # fmt: skip


def test_all_accounts_sum_every_account(app: AppContext, traffic_sent: dict[str, Any]) -> None:
    main = report(app, "messages", account="main", **MARCH)
    card = report(app, "messages", account="card", **MARCH)
    both = report(app, "messages", all_accounts=True, **MARCH)
    assert {r["account"] for r in both} == {"*"}
    for i, row in enumerate(both):
        for column in reports.MESSAGE_COLUMNS:
            assert row[column] == main[i][column] + card[i][column]
    assert both[1]["inbound"] == 9 and both[1]["default_reply"] == 3


def test_keywords_menus_and_followers(app: AppContext, traffic_sent: dict[str, Any]) -> None:
    hits = report(app, "keywords", account="main", **MARCH)
    assert hits == [
        {"period": "2026-03-01T00:00:00+08:00", "account": "main",
         "rule_id": traffic_sent["balance"], "pattern": "余额", "match": "contains",
         "action": None, "removed": False, "hits": 1},
        {"period": "2026-03-02T00:00:00+08:00", "account": "main",
         "rule_id": traffic_sent["click"], "pattern": "MENU_BAL", "match": "click",
         "action": None, "removed": False, "hits": 1},
    ]  # fmt: skip
    menus = report(app, "menus", account="main", by="total", **MARCH)
    assert [(r["key"], r["clicks"], r["menu_version"], r["name"]) for r in menus] == [
        ("MENU_BAL", 1, None, None), ("NO_SUCH_KEY", 1, None, None),
        ("https://bank.example/a", 1, None, None),
    ]  # fmt: skip
    followers = report(app, "followers", account="main", **MARCH)
    assert [(r["new"], r["lost"], r["net"], r["cumulative"]) for r in followers] == [
        (0, 0, 0, 0), (1, 1, 0, 0)]  # fmt: skip
    scenes = report(app, "followers", account="main", by="total", split="scene", **MARCH)
    assert [(r["scene"], r["qr_scene"], r["new"], r["lost"]) for r in scenes] == [
        ("ADD_SCENE_QR_CODE", "42", 1, 0), ("unknown", None, 0, 1)]  # fmt: skip


def test_unmatched_texts(app: AppContext, traffic_sent: dict[str, Any]) -> None:
    req = reports.request(app, "keywords", account="main", by="total", unmatched=True, **MARCH)
    outcome = reports.run(app, req)
    assert outcome.rows == [UnmatchedRow("2026-03-01T00:00:00+08:00", "main",
                                         text="hello world", count=1, followers=1)]  # fmt: skip
    assert [r.to_json() for r in outcome.rows] == [{
        "period": "2026-03-01T00:00:00+08:00", "account": "main", "text": "hello world",
        "count": 1, "followers": 1}]  # fmt: skip
    assert outcome.notes == (
        "--since is before the conversation log's oldest text (2026-03-01T23:59:00+08:00; see "
        "its retention): unmatched texts before it are not counted.",
    )
    later = reports.request(app, "keywords", account="main", unmatched=True,
                            since="2026-03-02", until="2026-03-03")  # fmt: skip
    assert reports.run(app, later).notes == ()
    both = reports.run(app, reports.request(app, "keywords", all_accounts=True, by="total",
                                            unmatched=True, **MARCH))  # fmt: skip
    assert [(r.text, r.count, r.followers) for r in both.rows if isinstance(r, UnmatchedRow)] == [
        ("hello world", 2, 2)]  # fmt: skip
    assert len(both.rows) == 1


def test_purge_and_a_second_backfill_change_no_report(
    app: AppContext, traffic_sent: dict[str, Any]
) -> None:
    names = ("messages", "keywords", "menus", "followers")
    before = {n: report(app, n, all_accounts=True, by="hour", **MARCH) for n in names}
    assert reports.backfill(app)[1].entries == 0  # counted already
    messages.purge(app, utc("2026-04-01T00:00"), None)
    assert app.store.messages.all() == []
    assert [d.entries for d in reports.backfill(app)] == [0, 0]
    after = {n: report(app, n, all_accounts=True, by="hour", **MARCH) for n in names}
    assert json.dumps(after) == json.dumps(before)
    gone = reports.run(app, reports.request(app, "keywords", account="main", unmatched=True,
                                            **MARCH))  # fmt: skip
    assert gone.rows == [] and gone.notes == (
        "the conversation log holds no text (see its retention): nothing to count.",
    )


def test_a_report_reads_one_snapshot(app: AppContext, traffic_sent: dict[str, Any]) -> None:
    """What is committed after the snapshot began is not in the report."""
    from bankwx_cli.context import AppContext as Context
    from bankwx_cli.settings import from_environment

    other = Context(from_environment())
    try:
        rollups = app.store.rollups
        with app.store.reading():
            first = rollups.sums("rollup_messages", ["main"], "", "9999", "total")
            with other.store.transaction():
                other.store.rollups.add(
                    "rollup_messages",
                    {"account": "main", "hour": "2026-03-02T01:00:00Z", "msg_type": "text",
                     "route": "default"},
                    {"inbound": 5},
                )  # fmt: skip
            again = rollups.sums("rollup_messages", ["main"], "", "9999", "total")
        later = rollups.sums("rollup_messages", ["main"], "", "9999", "total")
    finally:
        other.close()
    assert first == again
    assert later[0].counter("inbound") == first[0].counter("inbound") + 5


def _deploy(app: AppContext, at: str, buttons: list[dict[str, Any]]) -> int:
    with app.store.transaction():
        version = app.store.menu_versions.add(
            account="main", state="deployed", content={"menu": {"button": buttons}},
            hash=at, source="test", created_by="alice", at=at, note="",
        )  # fmt: skip
        app.store.menu_versions.finish(
            "main", version, state="deployed", deployed_by="alice", deployed_at=at,
            wechat_answer=[], note="", at=at,
        )  # fmt: skip
    return version


def test_clicks_around_a_menu_deploy_and_a_removed_rule(app: AppContext, traffic: Traffic) -> None:
    rule = keywords.add(app, "main", "BAL", "click", reply=TextReply("余额"))
    traffic.event(shanghai("2026-03-02T09:00"), "CLICK", "BAL")  # before any menu
    first = _deploy(app, iso(shanghai("2026-03-02T10:00")), [
        {"type": "click", "name": "余额", "key": "BAL"},
        {"name": "更多", "sub_button": [{"type": "view", "name": "官网",
                                         "url": "https://bank.example/"}]},
    ])  # fmt: skip
    traffic.event(shanghai("2026-03-02T10:00"), "CLICK", "BAL")  # at the deploy: version 1
    traffic.event(shanghai("2026-03-02T10:30"), "VIEW", "https://bank.example/")
    second = _deploy(app, iso(shanghai("2026-03-02T11:00")), [
        {"type": "click", "name": "查余额", "key": "BAL"},
    ])  # fmt: skip
    traffic.event(shanghai("2026-03-02T11:00"), "CLICK", "BAL")
    traffic.event(shanghai("2026-03-02T11:05"), "CLICK", "BAL")
    traffic.event(shanghai("2026-03-02T11:10"), "VIEW", "https://bank.example/")  # gone from v2
    with app.store.transaction():
        app.store.keyword_rules.delete(rule.id)
    reports.backfill(app)
    menus = report(app, "menus", account="main", by="total", **MARCH)
    assert [(r["menu_version"], r["key"], r["name"], r["type"], r["clicks"]) for r in menus] == [
        (second, "BAL", "查余额", "click", 2),
        (None, "BAL", None, None, 1),
        (first, "BAL", "余额", "click", 1),
        (first, "https://bank.example/", "官网", "view", 1),
        (second, "https://bank.example/", None, None, 1),
    ]  # fmt: skip
    hits = report(app, "keywords", account="main", by="total", **MARCH)
    assert [(r["rule_id"], r["removed"], r["pattern"], r["hits"]) for r in hits] == [
        (rule.id, True, None, 4)]  # fmt: skip
