"""The api report: WeChat calls counted by the client's recorder, per hour of app.clock."""

from __future__ import annotations

import json
from typing import Any

from bxprocs import Sim
from bxtest import Bankwx
from reportkit import report, shanghai

from bankwx_cli.clock import FixedClock
from bankwx_cli.context import AppContext, BufferedRecorder
from bankwx_cli.models.reports import bucket_of, middle_of


def _appid(app: AppContext, name: str) -> str:
    account = app.store.accounts.get(name)
    assert account is not None
    return account.appid


def test_calls_errors_retries_latency_and_quota(app: AppContext, clock: FixedClock) -> None:
    recorder = BufferedRecorder(app.store, clock)
    main, card = _appid(app, "main"), _appid(app, "card")
    path = "/cgi-bin/message/custom/send"
    # Shanghai 2026-03-01 23:00 and 23:59: the quota day of Mar 1; 00:30 Mar 2: the next one
    for at, n, outcome, retry in (("2026-03-01T23:00", 3, "ok", False),
                                  ("2026-03-01T23:59", 2, "error", True),
                                  ("2026-03-02T00:30", 4, "ok", False)):  # fmt: skip
        clock.set(shanghai(at))
        for i in range(n):
            recorder.record(main, path, outcome, 45011 if outcome == "error" else None,
                            10.0 * (i + 1), retry)  # fmt: skip
    clock.set(shanghai("2026-03-02T00:30"))
    recorder.record(main, "/cgi-bin/stable_token", "ok", None, 5.0)
    recorder.record(main, "/cgi-bin/stable_token", "http_503", None, 5.0)
    recorder.record(card, path, "ok", None, 1.0)
    recorder.flush()
    days = report(app, "api", account="main", since="2026-03-01", until="2026-03-03")
    assert [(r["period"][:10], r["endpoint"], r["calls"], r["errors"], r["retries"],
             r["quota_used"], r["daily_quota"], r["token_refreshes"]) for r in days] == [
        ("2026-03-01", path, 5, 2, 2, 5, 500000, 0),
        ("2026-03-02", path, 4, 0, 0, 4, 500000, 0),
        ("2026-03-02", "/cgi-bin/stable_token", 2, 1, 0, 2, 500000, 1),
    ]  # fmt: skip
    assert days[0]["error_rate"] == 0.4
    # latencies 10, 20, 30 and 10, 20: p50 is 20 ms (nearest rank), p99 30 ms
    assert days[0]["p50_ms"] == round(middle_of(bucket_of(20.0)), 1)
    assert days[0]["p99_ms"] == round(middle_of(bucket_of(30.0)), 1)
    total = report(app, "api", account="main", by="total", since="2026-03-01", until="2026-03-03")
    custom = next(r for r in total if r["endpoint"] == path)
    assert (custom["calls"], custom["quota_used"]) == (9, 5)  # the busiest quota day
    both = report(app, "api", all_accounts=True, by="total", since="2026-03-01",
                  until="2026-03-03")  # fmt: skip
    summed = next(r for r in both if r["endpoint"] == path)
    assert (summed["account"], summed["calls"], summed["daily_quota"]) == ("*", 10, 1000000)
    hours = report(app, "api", account="main", by="hour", since="2026-03-01T23:00",
                   until="2026-03-02T00:00")  # fmt: skip
    assert [(r["calls"], r["quota_used"]) for r in hours] == [(5, 5)]
    # the per-minute counters keep the retry flag too
    minutes = app.store.db.all("SELECT sum(calls), sum(retries) FROM api_calls")
    assert tuple(minutes[0]) == (12, 2)


def test_the_clients_retries_are_flagged(account: Bankwx, sim: Sim) -> None:
    """Through the real client and the simulator: every HTTP request is a call, each failed
    one an error, the attempts after it retries."""
    sim.driver.set_faults(fail_rate=0.5, seed=11, kinds=["busy"])
    for _ in range(4):
        checked = account("account", "check")
        assert checked.exit_code == 0, checked.output
    sim.driver.set_faults(fail_rate=0)
    rows = json.loads(account("report", "api", "--by", "total", "--since", "2026-01-01",
                              "--format", "json").stdout)  # fmt: skip
    seen: dict[str, list[dict[str, Any]]] = {}
    for entry in sim.driver.log(kind="api"):
        seen.setdefault(entry["path"], []).append(entry)
    assert {r["endpoint"] for r in rows} == set(seen)
    for row in rows:
        entries = seen[row["endpoint"]]
        failed = sum(1 for e in entries if e.get("fault"))
        assert (row["calls"], row["errors"], row["retries"]) == (len(entries), failed, failed)
    assert any(r["retries"] for r in rows)  # the seed makes some calls fail


def test_the_accounts_api_quotas_override_the_sheets(
    app: AppContext, clock: FixedClock, with_account: Bankwx
) -> None:
    bad = with_account("account", "set", "main", "api_quotas", '{"user/get": 0}')
    assert bad.exit_code == 1 and "api_quotas" in bad.stderr
    done = with_account("account", "set", "main", "api_quotas",
                        '{"message/custom/send": 1000, "/cgi-bin/freepublish/x": 7}')  # fmt: skip
    assert done.exit_code == 0, done.output
    recorder = BufferedRecorder(app.store, clock)
    clock.set(shanghai("2026-03-01T10:00"))
    for path in ("/cgi-bin/message/custom/send", "/cgi-bin/freepublish/x", "/cgi-bin/unknown"):
        recorder.record(_appid(app, "main"), path, "ok", None, 1.0)
    recorder.flush()
    rows = json.loads(with_account("report", "api", "--account", "main", "--by", "total",
                                   "--since", "2026-03-01", "--until", "2026-03-02",
                                   "--format", "json").stdout)  # fmt: skip
    assert {r["endpoint"]: r["daily_quota"] for r in rows} == {
        "/cgi-bin/freepublish/x": 7, "/cgi-bin/message/custom/send": 1000,
        "/cgi-bin/unknown": None,
    }  # fmt: skip
