"""What happens to an alert after intake: 45009, an unknown unit, preferences, quiet hours."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alertkit import C1, C3, Alerting, bind, event, jsonl

from bankwx_cli.context import AppContext
from bankwx_cli.domain import alert_preferences
from bankwx_cli.models.alert_preferences import AlertPreferences
from bankwx_cli.settings import from_environment
from bankwx_cli.sim.api_templates import template_id
from bankwx_cli.storage import open_store

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_45009_in_the_alert_lane_falls_back_to_sms_at_once(
    alerting: Alerting, tmp_path: Path
) -> None:
    a = alerting
    bind(a.db, a.openids[0], C1)
    a.sim.set_faults(quotas={"/cgi-bin/message/template/send": {"daily": 0}})
    a.push(jsonl(tmp_path / "a.jsonl", event("e1")))
    a.run()
    a.run()
    assert [s["phone"] for s in a.sms()] == [a.phone(C1)]
    assert a.sms_posts() == 1
    shown = a.show("e1")
    assert shown["channel"] == "sms"
    [recipient] = shown["recipients"]  # type: ignore[misc]
    assert recipient["state"] == "failed" and "45009" in str(recipient["reason"])


def test_an_unknown_unit_does_not_fall_back(alerting: Alerting, tmp_path: Path) -> None:
    a = alerting
    bind(a.db, a.openids[0], C1)
    a.push(jsonl(tmp_path / "a.jsonl", event("e1")))
    # a dispatcher that died mid-send more than WeChat's 10-minute de-duplication ago
    store = open_store(a.db)
    try:
        with store.transaction():
            store.db.execute(
                "UPDATE outbox SET state = 'sending', claimed_by = 'gone:1:dead', attempts = 1, "
                "first_attempt_at = :t WHERE kind = 'template'",
                {"t": time.time() - 700},
            )
    finally:
        store.close()
    a.run()
    shown = a.show("e1")
    assert shown["state"] == "unknown"
    assert shown["channel"] is None
    [recipient] = shown["recipients"]  # type: ignore[misc]
    assert recipient["state"] == "unknown"
    a.run()
    assert a.sms() == []
    assert a.templates_to(a.openids[0]) == 0
    assert a.sms_posts() == 0


# --- preferences: written as the alert_settings action writes them --------------------------


@dataclass
class Prefs:
    off_types: set[str] = field(default_factory=set)
    min_amount_fen: int | None = None
    quiet_hours: str | None = None


class _Saved(dict[str, Prefs]):
    """Setting a follower's entry stores its preferences (``alert_preferences.save``)."""

    def __setitem__(self, openid: str, prefs: Prefs) -> None:
        super().__setitem__(openid, prefs)
        app = AppContext(from_environment())
        try:
            alert_preferences.save(app, AlertPreferences(
                "main", openid, tuple(sorted(prefs.off_types)), prefs.min_amount_fen,
                prefs.quiet_hours,
            ))  # fmt: skip
        finally:
            app.store.close()


@pytest.fixture
def prefs(alerting: Alerting) -> dict[str, Prefs]:
    """Each follower's preferences: an entry set is stored."""
    return _Saved()


def _at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """bankwx's clock at moment (BANKWX_TEST_CLOCK_OFFSET)."""
    monkeypatch.setenv("BANKWX_TEST_ACTIONS", "1")
    monkeypatch.setenv("BANKWX_TEST_CLOCK_OFFSET", str(round(moment.timestamp() - time.time())))


def _next(hour: int, minute: int = 0) -> datetime:
    now = datetime.now(SHANGHAI)
    found = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return found if found > now else found + timedelta(days=1)


def test_preferences_filter_and_security_alerts_pass(
    alerting: Alerting, tmp_path: Path, prefs: dict[str, Prefs]
) -> None:
    a = alerting
    one, two = a.openids[0], a.openids[1]
    bind(a.db, one, C1)
    bind(a.db, two, C1)
    prefs[one] = Prefs(off_types={"交易提醒", "登录提醒"})
    prefs[two] = Prefs(min_amount_fen=200_000)
    login = template_id("wx1234567890abcdef", "repayment")
    fields = ["amount={amount_fen|yuan}", "date={occurred_at|date}", "first=登录", "remark=-"]
    args = ["alert", "rule", "add", "login", "--template", login, "--label", "登录提醒"]
    for one_field in fields:
        args += ["--field", one_field]
    added = a.bx(*args, "--security")
    assert added.exit_code == 0, added.output
    a.push(jsonl(tmp_path / "a.jsonl", event("small"), event("big", amount_fen=300_000),
                 event("in", type_="login")))  # fmt: skip
    a.run()
    assert a.templates_to(one) == 1  # the security alert only
    assert a.templates_to(two) == 2  # big, and the security alert
    small = a.show("small")
    assert small["state"] == "suppressed" and small["channel"] is None
    assert sorted(r["state"] for r in small["recipients"]) == ["suppressed", "suppressed"]  # type: ignore[union-attr]
    assert a.sms() == []  # suppressed by choice: no SMS either


def test_quiet_hours_defer_and_release(
    alerting: Alerting, tmp_path: Path, prefs: dict[str, Prefs], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = alerting
    one, two = a.openids[0], a.openids[1]
    bind(a.db, one, C1)
    bind(a.db, two, C3)
    prefs[one] = Prefs(quiet_hours="22:00-07:00")
    prefs[two] = Prefs(quiet_hours="22:00-07:00")
    night = _next(23)
    _at(monkeypatch, night)
    a.push(jsonl(tmp_path / "a.jsonl", event("e1"), event("e2", customer=C3)))
    a.run()
    assert a.templates_to(one) == 0 and a.templates_to(two) == 0
    assert a.show("e1")["state"] == "deferred"
    # meanwhile the second follower switches these alerts off
    prefs[two] = Prefs(off_types={"交易提醒"}, quiet_hours="22:00-07:00")
    _at(monkeypatch, night + timedelta(hours=8, minutes=30))  # 07:30
    a.run()
    assert a.templates_to(one) == 1
    assert a.templates_to(two) == 0
    assert a.show("e1")["state"] in ("sent", "delivered")
    assert a.show("e2")["state"] == "suppressed"
    assert a.sms() == []
    status = a.bx("alert", "status", "--format", "json")
    assert status.exit_code == 0, status.output
    counts = json.loads(status.stdout)
    assert counts["deferred"] == 2 and counts["suppressed"] == 1 and counts["sent_wechat"] == 1
    assert counts["latency_p50_ms"] is None  # deferred alerts are not in the latency


def test_a_minimum_amount_set_during_quiet_hours_applies_at_release(
    alerting: Alerting, tmp_path: Path, prefs: dict[str, Prefs], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The amount a deferred alert is compared with at release comes from its sealed data."""
    a = alerting
    one = a.openids[0]
    bind(a.db, one, C1)
    prefs[one] = Prefs(quiet_hours="22:00-07:00")
    night = _next(23)
    _at(monkeypatch, night)
    a.push(jsonl(tmp_path / "a.jsonl", event("small", amount_fen=5_000),
                 event("big", amount_fen=900_000)))  # fmt: skip
    a.run()
    assert a.templates_to(one) == 0
    prefs[one] = Prefs(min_amount_fen=100_000, quiet_hours="22:00-07:00")
    _at(monkeypatch, night + timedelta(hours=8, minutes=30))  # 07:30
    a.run()
    assert a.templates_to(one) == 1
    assert a.show("small")["state"] == "suppressed"
    assert a.show("big")["state"] in ("sent", "delivered")
    assert a.sms() == []


def test_a_job_result_before_the_msgid_is_recorded_is_applied_then(
    alerting: Alerting, tmp_path: Path
) -> None:
    """The dispatcher dies after WeChat took the message and before it recorded the msgid; the
    job result (failed) comes meanwhile; the next dispatcher sends again (WeChat answers the
    same msgid, sends nothing), records it, and the kept result sends the alert by SMS."""
    from bankwx_cli.context import AppContext
    from bankwx_cli.domain import alerts
    from bankwx_cli.settings import from_environment

    a = alerting
    bind(a.db, a.openids[0], C1)
    a.push(jsonl(tmp_path / "a.jsonl", event("e1")))
    a.run()
    [unit] = json.loads(a.bx("outbox", "list", "--format", "json").stdout)
    msgid = unit["wechat_msgid"]
    store = open_store(a.db)
    try:
        with store.transaction():
            store.db.execute(
                "UPDATE outbox SET state = 'sending', claimed_by = 'gone:1:dead', "
                "wechat_msgid = NULL WHERE id = :id",
                {"id": unit["id"]},
            )
            store.db.execute(
                "UPDATE alert_recipients SET state = 'queued', msgid = NULL, accepted_ts = NULL"
            )
            store.db.execute("UPDATE alert_events SET state = 'queued', sent_at = NULL")
    finally:
        store.close()
    app = AppContext(from_environment())
    try:
        alerts.keep_job_status(app, "main", msgid, "failed:user block")
    finally:
        app.close()
    a.run()
    a.run()
    assert a.templates_to(a.openids[0]) == 1  # sent again, de-duplicated by WeChat
    assert [s["phone"] for s in a.sms()] == [a.phone(C1)]
    shown = a.show("e1")
    assert shown["channel"] == "sms"
    [recipient] = shown["recipients"]  # type: ignore[misc]
    assert recipient["state"] == "unreached" and recipient["msgid"] == msgid
    [unit] = [u for u in json.loads(a.bx("outbox", "list", "--format", "json").stdout)
              if u["kind"] == "template"]  # fmt: skip
    assert unit["delivery_status"] == "failed:user block"
