"""The alerts report: what `alert status` counts, rolled up with each alert change, by the hour
of each event's receipt. Alert traffic is made with the alerts' own fixtures (imported from
tests/domain/alerts: the simulator, a stand-in back-end and SMS gateway, the source 'core' and
a rule for 'transaction')."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from reportkit import report, shanghai

from bankwx_cli.clock import FixedClock
from bankwx_cli.context import AppContext
from bankwx_cli.domain import alert_preferences, alerts
from bankwx_cli.models.alert_preferences import AlertPreferences
from bankwx_cli.settings import from_environment

_ALERTS = Path(__file__).parents[1] / "alerts"
sys.path.insert(0, str(_ALERTS))  # alertkit, which the alerts' fixtures import
_spec = importlib.util.spec_from_file_location("alerts_fixtures", _ALERTS / "conftest.py")
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
# every fixture of the alerts' conftest (alerting, and what it stands on), for this module only
globals().update({
    name: value for name, value in vars(_fixtures).items()
    if type(value).__name__ == "FixtureFunctionDefinition"
})  # fmt: skip

import alertkit  # noqa: E402
from alertkit import Alerting, bind, event, jsonl  # noqa: E402

# customers with a phone in the alerts' stand-in back-end (the sandbox's seeded ones, or
# the stand-in's own where that is what the alerts' tests use)
BOUND, UNBOUND, OFF = (getattr(alertkit, c, old) for c, old in
                       (("C1", "C100"), ("C2", "C200"), ("C3", "C300")))  # fmt: skip

SHANGHAI = ZoneInfo("Asia/Shanghai")
COUNTS = ("received", "rejected", "duplicates", "suppressed", "deferred", "sent_wechat",
          "delivered", "sms", "failed", "unknown", "sms_avoided")  # fmt: skip


def _hours_around_now() -> tuple[str, str]:
    """A range of whole hours (bank time) around now."""
    now = datetime.now(SHANGHAI).replace(minute=0, second=0, microsecond=0)
    return (now - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"), (
        now + timedelta(hours=3)
    ).strftime("%Y-%m-%dT%H:%M")


def _json(a: Alerting, *args: str) -> Any:
    done = a.bx(*args, "--format", "json")
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def _rollups(db: Any) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for table in ("rollup_alerts", "rollup_alert_latency")
        for r in db.all(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4")  # noqa: S608
    ]


def test_by_total_equals_alert_status_and_a_recount(alerting: Alerting, tmp_path: Path) -> None:
    """Known traffic: e1 to two bound followers (sent), e2 to a follower who switched the type
    off (suppressed), e3 to an unbound customer (SMS), e1 again (duplicate), a type without a
    rule (rejected)."""
    a = alerting
    bind(a.db, a.openids[0], BOUND)
    bind(a.db, a.openids[1], BOUND)
    bind(a.db, a.openids[2], OFF)
    app = AppContext(from_environment())
    try:
        alert_preferences.save(app, AlertPreferences("main", a.openids[2], ("交易提醒",), None,
                                                     None))  # fmt: skip
    finally:
        app.close()
    a.push(jsonl(tmp_path / "a.jsonl", event("e1", customer=BOUND), event("e2", customer=OFF),
                 event("e3", customer=UNBOUND), event("x1", type_="nosuch")))  # fmt: skip
    a.push(jsonl(tmp_path / "b.jsonl", event("e1", customer=BOUND)))
    a.run()
    a.run()
    since, until = _hours_around_now()
    status = _json(a, "alert", "status", "--since", since, "--until", until)
    [row] = _json(a, "report", "alerts", "--since", since, "--until", until, "--by", "total")
    assert {k: row[k] for k in COUNTS} == {
        "received": 3, "rejected": 1, "duplicates": 1, "suppressed": 1, "deferred": 0,
        "sent_wechat": 2, "delivered": 0, "sms": 1, "failed": 0, "unknown": 0,
        "sms_avoided": 1,
    }  # fmt: skip
    assert {k: row[k] for k in COUNTS} == {k: status[k] for k in COUNTS}
    assert row["event_type"] is None and row["account"] == "main"
    for p in ("latency_p50_ms", "latency_p99_ms"):
        assert status[p] is not None and row[p] is not None
        assert abs(row[p] - status[p]) <= 0.05 * status[p] + 0.1, (p, row[p], status[p])
    # per type: the rejected event under the type it gave
    split = _json(a, "report", "alerts", "--since", since, "--until", until, "--by", "total",
                  "--split", "type")  # fmt: skip
    assert [(r["event_type"], r["received"], r["rejected"], r["duplicates"]) for r in split] == [
        ("nosuch", 0, 1, 0), ("transaction", 3, 0, 1)]  # fmt: skip
    # a store filled before the roll-ups existed: m0018's count gives what live counting gave
    app = AppContext(from_environment())
    try:
        live = _rollups(app.store.db)
        with app.store.transaction():
            app.store.rollups.recount_alerts()
        assert _rollups(app.store.db) == live
    finally:
        app.close()


def test_days_in_bank_time_empty_periods_and_all_accounts(alerting: Alerting) -> None:
    """Events taken at chosen times (unbound customers: an SMS each at intake)."""
    clock = FixedClock(shanghai("2026-03-01T23:59"))
    app = AppContext(from_environment(), clock=clock)
    try:
        source = app.store.alerts.source("core")
        assert source is not None
        for at, event_id in (("2026-03-01T23:59", "a"), ("2026-03-02T00:00", "b"),
                             ("2026-03-02T07:59", "c"), ("2026-03-02T08:00", "d")):  # fmt: skip
            clock.set(shanghai(at))
            [taken] = alerts.take(app, source, [event(event_id, customer=UNBOUND)])
            assert taken.status == "accepted"
        clock.set(shanghai("2026-03-02T09:00"))
        alerts.take(app, source, [event("a", customer=UNBOUND), {"event_id": "bad"}])
        days = report(app, "alerts", account="main", since="2026-03-01", until="2026-03-04")
        assert [(r["period"], r["received"], r["sms"], r["duplicates"], r["rejected"],
                 r["latency_p50_ms"]) for r in days] == [
            ("2026-03-01T00:00:00+08:00", 1, 1, 0, 0, None),
            ("2026-03-02T00:00:00+08:00", 3, 3, 1, 1, None),  # UTC midnight: no boundary
            ("2026-03-03T00:00:00+08:00", 0, 0, 0, 0, None),  # empty: zeros
        ]  # fmt: skip
        hours = report(app, "alerts", account="main", by="hour", since="2026-03-02T07:00",
                       until="2026-03-02T09:00")  # fmt: skip
        assert [(r["period"], r["received"]) for r in hours] == [
            ("2026-03-02T07:00:00+08:00", 1), ("2026-03-02T08:00:00+08:00", 1)]  # fmt: skip
        both = report(app, "alerts", all_accounts=True, by="total", since="2026-03-01",
                      until="2026-03-04")  # fmt: skip
        assert [(r["account"], r["received"], r["sms"]) for r in both] == [("*", 4, 4)]
        with pytest.raises(Exception, match="--split 'route'"):
            report(app, "alerts", account="main", split="route")
    finally:
        app.close()
