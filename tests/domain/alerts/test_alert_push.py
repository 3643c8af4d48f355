"""Alerts through `alert push` and the outbox: duplicates, bad events, SMS fallback."""

from __future__ import annotations

import json
from pathlib import Path

from alertkit import C1, C2, C3, UNKNOWN, Alerting, bind, event, jsonl
from bxtest import APPID

from bankwx_cli.storage import open_store


def test_a_duplicate_event_id_sends_once(alerting: Alerting, tmp_path: Path) -> None:
    a = alerting
    bind(a.db, a.openids[0], C1)
    first = a.push(jsonl(tmp_path / "a.jsonl", event("e1"), event("e1")))
    assert [r["status"] for r in first] == ["accepted", "duplicate"]
    assert first[1]["reason"] is None
    again = a.push(jsonl(tmp_path / "b.jsonl", event("e1"), event("e1", amount_fen=5)))
    assert [r["status"] for r in again] == ["duplicate", "duplicate"]
    assert again[1]["reason"] == "the stored event with this id has other content"
    a.run()
    a.push(jsonl(tmp_path / "c.jsonl", event("e1")))
    a.run()
    assert a.templates_to(a.openids[0]) == 1
    status = json.loads(a.bx("alert", "status", "--format", "json").stdout)
    assert status["received"] == 1 and status["duplicates"] == 4
    assert status["sms_avoided"] == 1 and status["sms_saved_fen"] is None
    assert a.bx("account", "set", "main", "alerts.sms_cost_fen", "5").exit_code == 0
    status = json.loads(a.bx("alert", "status", "--format", "json").stdout)
    assert status["sms_saved_fen"] == 5 and status["latency_p99_ms"] is not None
    shown = a.show("e1")
    assert shown["state"] in ("sent", "delivered")
    assert shown["channel"] is None
    [recipient] = shown["recipients"]  # type: ignore[misc]
    assert recipient["openid"] == a.openids[0] and recipient["msgid"]
    delivered = [d for d in a.sim.delivered(kind="template") if d["openid"] == a.openids[0]]
    data = delivered[0]["data"]
    assert data["amount"]["value"] == "1,234.56元"
    assert data["first"]["value"] == "您尾号1234的卡发生一笔交易"
    assert data["time"]["value"] == "2026年01月05日 10:00"
    assert a.sms() == []


def test_a_batch_rejects_its_bad_events_with_reasons(alerting: Alerting, tmp_path: Path) -> None:
    a = alerting
    bind(a.db, a.openids[0], C1)
    missing = event("e2")
    del missing["data"]["amount_fen"]
    lines = [
        event("e1"),
        missing,
        event("e3", type_="nope"),
        "{not json",
        {"event_id": "e5", "type": "transaction"},
        event("e6", amount_fen="12"),  # type: ignore[arg-type]
        event("e7"),
    ]
    result = a.bx("alert", "push", str(jsonl(tmp_path / "a.jsonl", *lines)), "--source", "core")
    assert result.exit_code == 1, result.output
    assert "line 2 (e2): field amount: data.amount_fen is missing" in result.stderr
    assert "line 3 (e3): no rule for type 'nope' on account main" in result.stderr
    assert "line 4 (no event_id): not JSON" in result.stderr
    assert "line 5 (e5): customer_id is missing or not a text" in result.stderr
    assert "line 6 (e6): data.amount_fen is not a whole number of fen" in result.stderr
    assert "2 accepted, 0 skipped, 5 rejected." in result.stderr
    for rejected in ("e2", "e3", "e5", "e6"):
        gone = a.bx("alert", "show", rejected)
        assert gone.exit_code == 1
        assert gone.stderr.startswith(f"Error: no alert event '{rejected}'")
    # a rejected id stays free: the corrected event is accepted
    fixed = a.push(jsonl(tmp_path / "b.jsonl", event("e2")))
    assert fixed[0]["status"] == "accepted"
    status = json.loads(a.bx("alert", "status", "--format", "json").stdout)
    assert status["received"] == 3 and status["rejected"] == 5 and status["duplicates"] == 0


def test_an_unbound_customer_gets_one_sms(alerting: Alerting, tmp_path: Path) -> None:
    a = alerting
    a.push(jsonl(tmp_path / "a.jsonl", event("e1", customer=C2)))
    a.push(jsonl(tmp_path / "b.jsonl", event("e1", customer=C2)))
    a.run()
    a.run()
    assert [s["phone"] for s in a.sms()] == [a.phone(C2)]
    assert a.sms()[0]["text"] == "您尾号1234的卡交易1,234.56元"
    assert a.sms_posts() == 1
    shown = a.show("e1")
    assert shown["state"] == "sms" and shown["channel"] == "sms"
    assert shown["reason"] == "unbound" and shown["sent_at"]
    assert shown["recipients"] == []
    assert a.sim.delivered(kind="template") == []


def test_an_unknown_customer_fails_the_sms_with_the_reason(
    alerting: Alerting, tmp_path: Path
) -> None:
    a = alerting
    a.push(jsonl(tmp_path / "a.jsonl", event("e1", customer=UNKNOWN)))
    a.run()
    shown = a.show("e1")
    assert shown["state"] == "failed"
    assert "unknown_customer" in str(shown["reason"])
    assert a.sms() == []


def test_a_refusing_follower_falls_back_to_sms_once(alerting: Alerting, tmp_path: Path) -> None:
    a = alerting
    bind(a.db, a.openids[0], C1)
    a.sim._call("POST", "/sim/templates/settings", body={"refusers": [a.openids[0]]})
    a.push(jsonl(tmp_path / "a.jsonl", event("e1")))
    a.run()
    a.run()
    assert a.templates_to(a.openids[0]) == 0
    assert [s["phone"] for s in a.sms()] == [a.phone(C1)]
    assert a.sms_posts() == 1
    shown = a.show("e1")
    assert shown["channel"] == "sms" and shown["state"] == "sms"
    [recipient] = shown["recipients"]  # type: ignore[misc]
    assert recipient["state"] == "failed" and "43101" in str(recipient["reason"])
    retried = a.bx("outbox", "retry", str(recipient["unit"]))
    assert retried.exit_code == 1
    assert retried.stderr == (
        f"Error: unit {recipient['unit']} is not sent again: the alert went to the customer by "
        "SMS.\n"
    )


def test_one_reached_follower_holds_off_the_sms(alerting: Alerting, tmp_path: Path) -> None:
    a = alerting
    bind(a.db, a.openids[0], C1)
    bind(a.db, a.openids[1], C1)
    a.sim._call("POST", "/sim/templates/settings", body={"refusers": [a.openids[0]]})
    a.push(jsonl(tmp_path / "a.jsonl", event("e1")))
    a.run()
    assert a.templates_to(a.openids[1]) == 1
    assert a.sms() == []
    assert a.show("e1")["channel"] is None


def test_event_data_is_sealed_and_purged(alerting: Alerting, tmp_path: Path) -> None:
    a = alerting
    a.push(jsonl(tmp_path / "a.jsonl", event("e1", customer=C3, note="秘密备注")))
    wal = Path(f"{a.db}-wal")
    raw = a.db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert "秘密备注".encode() not in raw and b"6222020000001234" not in raw
    store = open_store(a.db)
    try:  # the amount only in the sealed data, not beside it in clear
        assert [tuple(r) for r in store.db.all("SELECT amount_fen FROM alert_events")] == [(None,)]
    finally:
        store.close()
    checked = a.bx("check", "--format", "json")
    assert "sealed at rest: table alert_events (data)" in checked.stdout, checked.output
    purged = a.bx("messages", "purge", "--before", "2999-01-01T00:00:00Z", "--yes")
    assert purged.exit_code == 0, purged.output  # the conversation log's purge takes the data
    store = open_store(a.db)
    try:
        assert store.alerts.purge_data_before("main", "9999-01-01T00:00:00Z") == 0
        [stored] = store.alerts.events_by_id("e1")
        assert store.alerts.data(stored.id) is None
    finally:
        store.close()
    assert a.show("e1")["customer_id"] == C3


def test_an_unsubscribed_follower_is_unreached_and_the_alert_goes_by_sms(
    alerting: Alerting, tmp_path: Path
) -> None:
    a = alerting
    bind(a.db, a.openids[0], C1)
    a.sim._call("POST", f"/sim/followers/{a.openids[0]}/unsubscribe", body={"appid": APPID})
    assert a.bx("follower", "sync", "--full").exit_code == 0
    a.push(jsonl(tmp_path / "a.jsonl", event("e1")))
    shown = a.show("e1")
    assert shown["channel"] == "sms"
    assert [(r["state"], r["reason"]) for r in shown["recipients"]] == [  # type: ignore[union-attr]
        ("unreached", "unsubscribed")
    ]
    plain = a.bx("alert", "show", "e1", "--format", "plain")
    assert plain.exit_code == 0, plain.output
    assert f"{a.openids[0]} unreached (unsubscribed)" in plain.stdout and "{" not in plain.stdout
    a.run()
    assert [s["phone"] for s in a.sms()] == [a.phone(C1)]
    assert a.sim.delivered(kind="template") == []


def test_a_rejection_keeps_no_event_data(alerting: Alerting, tmp_path: Path) -> None:
    """Rejections hold no data (DESIGN §5: card numbers never in clear): the source is told
    which value broke the rule, the store keeps the reason without it."""
    a = alerting
    card = "6222020000009876"
    bad = event("e1")
    bad["occurred_at"] = card  # a card number where the time should be
    [result] = a.push(jsonl(tmp_path / "a.jsonl", bad))
    assert result["status"] == "rejected"
    assert result["reason"] == f"'{card}' is not an ISO 8601 time"
    wal = Path(f"{a.db}-wal")
    raw = a.db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert card.encode() not in raw
    store = open_store(a.db)
    try:
        [kept] = store.db.all("SELECT reason FROM alert_rejections")
    finally:
        store.close()
    assert kept[0] == "the value is not an ISO 8601 time"
