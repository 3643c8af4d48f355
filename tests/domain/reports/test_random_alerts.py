"""For random alert changes made through the alerts' storage calls (the ones intake, the
outbox's hooks and WeChat's job results make), the alerts report's figures for every day are
`alert status`'s own queries over the same day, and a recount of the store (m0018's) gives the
roll-ups live counting wrote."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reportkit import report, utc

from bankwx_cli.clock import iso
from bankwx_cli.context import AppContext
from bankwx_cli.domain import alerts as alerts_domain
from bankwx_cli.domain import reports

START = utc("2026-02-28T00:00")
COUNTS = ("received", "rejected", "duplicates", "suppressed", "deferred", "sent_wechat",
          "delivered", "sms", "failed", "unknown")  # fmt: skip
STATES = ("queued", "deferred", "sent", "delivered", "unreached", "failed", "unknown",
          "suppressed")  # fmt: skip

change = st.one_of(
    st.tuples(st.just("recipient"), st.integers(0, 9), st.integers(0, 2),
              st.sampled_from(STATES), st.booleans(), st.floats(0.01, 30.0)),
    st.tuples(st.just("event"), st.integers(0, 9),
              st.sampled_from(("queued", "sent", "delivered", "failed", "unknown", "sms",
                               "suppressed")), st.booleans()),
    st.tuples(st.just("defer"), st.integers(0, 9), st.integers(0, 2)),
    st.tuples(st.just("note"), st.integers(0, 5 * 24 - 1), st.sampled_from(("rejected",
              "duplicate")), st.sampled_from(("transaction", "login", None))),
)  # fmt: skip
event = st.tuples(st.integers(0, 5 * 24 * 60 - 1), st.sampled_from(("transaction", "login")))


def _apply(app: AppContext, events: list[tuple[int, str]], changes: list[Any]) -> None:
    store = app.store.alerts
    db = app.store.db
    with app.store.transaction():
        for table in ("alert_recipients", "alert_events", "alert_rejections", "rollup_alerts",
                      "rollup_alert_latency"):  # fmt: skip
            db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
        rows: list[tuple[int, float]] = []
        for i, (minute, kind) in enumerate(events):
            at = START + timedelta(minutes=minute)
            row = store.add_event(
                source="core", event_id=f"e{i}", account="main", type_=kind, customer_id="C1",
                occurred_at=iso(at), security=False, amount_fen=100, content_hash="h",
                data={}, state="queued", received_at=iso(at), received_ts=at.timestamp(),
            )  # fmt: skip
            assert row is not None
            rows.append((row, at.timestamp()))
            for n in range(3):
                store.add_recipient(row, f"o{n}", 1000 * row + n, "queued", None)
        for found in changes:
            if found[0] == "note":
                at = iso(START + timedelta(hours=found[1]))
                store.note("core", "main", None, found[2], None, at, found[3])
                continue
            if not rows:
                continue
            row, received = rows[found[1] % len(rows)]
            if found[0] == "recipient":
                _, _, n, state, accepted, after = found
                values: dict[str, Any] = {"state": state}
                if accepted:
                    values.update(msgid=f"m{row}-{n}", accepted_ts=received + after)
                store.update_recipient(row, f"o{n}", **values)
            elif found[0] == "event":
                _, _, state, sms = found
                store.update_event(row, state=state, **({"channel": "sms"} if sms else {}))
            else:
                store.mark_deferred(1000 * row + found[2])


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture],
          deadline=None)  # fmt: skip
@given(st.lists(event, max_size=10), st.lists(change, max_size=40))
def test_every_day_is_alert_status(
    app: AppContext, events: list[tuple[int, str]], changes: list[Any]
) -> None:
    _apply(app, events, changes)
    rows = report(app, "alerts", account="main", since="2026-02-28", until="2026-03-05")
    assert len(rows) == 5
    for row in rows:
        status = alerts_domain.status(app, row["period"][:19], _next_day(row["period"]), "main")
        assert {k: row[k] for k in COUNTS} == {k: status.counts[k] for k in COUNTS}
        assert row["sms_avoided"] == status.sms_avoided
        for p in ("latency_p50_ms", "latency_p99_ms"):
            exact, found = getattr(status, p), row[p]
            if exact is None:
                assert found is None
            else:
                assert abs(found - exact) <= 0.05 * exact + 0.05, (p, found, exact)
    live = _rollups(app)
    with app.store.transaction():
        app.store.rollups.recount_alerts()
    assert _rollups(app) == live
    total = report(app, "alerts", account="main", since="2026-02-28", until="2026-03-06",
                   by="total", split="type")  # fmt: skip
    assert sum(r["received"] for r in total) == len(events)


def _next_day(period: str) -> str:
    from bankwx_cli.clock import parse_user_time

    return iso(parse_user_time(period) + timedelta(days=1))


def _rollups(app: AppContext) -> list[tuple[Any, ...]]:
    """The roll-ups, rows whose counters are all 0 left out (a change undone leaves one)."""
    found = []
    for table in ("rollup_alerts", "rollup_alert_latency"):
        for r in app.store.db.all(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4"):  # noqa: S608
            values = tuple(r)
            counters = values[3:] if table == "rollup_alerts" else values[4:]
            if any(counters):
                found.append((table, *values))
    return found


def test_a_report_without_alerts_is_zeros(app: AppContext) -> None:
    rows = report(app, "alerts", account="main", since="2026-03-01", until="2026-03-02",
                  by="hour")  # fmt: skip
    assert len(rows) == 24
    assert all(r["received"] == 0 and r["latency_p50_ms"] is None for r in rows)
    assert reports.columns(reports.request(app, "alerts", account="main", split="type")) == list(
        reports.COLUMNS["alerts"]
    )
