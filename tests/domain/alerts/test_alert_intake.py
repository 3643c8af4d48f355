"""The HTTP intake, POST /api/v1/alerts, on a running `bankwx serve`: keys, shapes, limits,
batches, and the path to WeChat and back (job results)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from alertkit import C1, C2, C3, KEY, UNKNOWN, Alerting, bind, event, post
from bxprocs import Proc, start_receiver

from bankwx_cli.sandbox.messaging import AlertFeed
from bankwx_cli.sandbox.server import SandboxThread


def test_keys_shapes_and_limits(alerting: Alerting, receivers: list[Proc]) -> None:
    a = alerting
    url = start_receiver(a.bx, receivers).url
    for key in (None, "bxa_wrong", a.key[:-1]):
        answer = post(url, event("e1"), key)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthorized"
    bad = [
        (b"{not json", "the body is not JSON"),
        (b"[1, 2]", 'the body is one event or {"events": [EVENT, ...]}'),
        (b'{"events": []}', '"events" is a list of 1 to 500 events'),
        (json.dumps({"events": [event(f"x{i}") for i in range(501)]}).encode(), "501 events"),
    ]
    for raw, message in bad:
        answer = post(url, None, a.key, raw)
        assert answer.status_code == 400, answer.text
        assert message in answer.json()["error"]["message"]
    big = json.dumps({"events": [event("x", pad="x" * 2_000_000)]}).encode()
    too_large = post(url, None, a.key, big)
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "too_large"  # the Contract's error shape
    answer = post(url, event("e1", customer=UNKNOWN), a.key)
    assert answer.status_code == 200
    assert answer.json() == {"results": [{"event_id": "e1", "status": "accepted", "reason": None}]}
    sources = json.loads(a.bx("alert", "source", "list", "--format", "json").stdout)
    assert sources[0]["name"] == "core" and sources[0]["last_used_at"]
    assert "key" not in sources[0]


def test_a_batch_answers_each_event_in_order(alerting: Alerting, receivers: list[Proc]) -> None:
    a = alerting
    bind(a.db, a.openids[0], C1)
    url = start_receiver(a.bx, receivers).url
    missing = event("b2")
    del missing["data"]["amount_fen"]
    events = [event("b1"), missing, event("b1"), event("b3", type_="nope"), event("b4")]
    events += [event(f"n{i}", customer=C3) for i in range(60)]  # two transactions
    answer = post(url, {"events": events}, a.key)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["event_id"] for r in results] == [e["event_id"] for e in events]
    assert [r["status"] for r in results[:5]] == [
        "accepted", "rejected", "duplicate", "rejected", "accepted",
    ]  # fmt: skip
    assert results[1]["reason"] == "field amount: data.amount_fen is missing"
    assert results[3]["reason"] == "no rule for type 'nope' on account main"
    assert {r["status"] for r in results[5:]} == {"accepted"}
    again = post(url, {"events": events[:1]}, a.key).json()["results"]
    assert again == [{"event_id": "b1", "status": "duplicate", "reason": None}]


def test_rotate_keeps_the_old_key_for_its_grace(alerting: Alerting, receivers: list[Proc]) -> None:
    a = alerting
    url = start_receiver(a.bx, receivers).url
    rotated = a.bx("alert", "source", "rotate", "core", "--format", "json")
    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.stdout)["key"]
    assert post(url, event("r1", customer=UNKNOWN), a.key).status_code == 200
    assert post(url, event("r2", customer=UNKNOWN), new).status_code == 200
    assert a.bx("alert", "source", "rotate", "core", "--grace", "0").exit_code == 0
    assert post(url, event("r3", customer=UNKNOWN), new).status_code == 401
    removed = a.bx("alert", "source", "remove", "core", "--yes")
    assert removed.exit_code == 0, removed.output


def test_served_alerts_reach_followers_and_blocked_ones_go_to_sms(
    alerting: Alerting, receivers: list[Proc], wait_for: Any
) -> None:
    a = alerting
    bind(a.db, a.openids[0], C1)
    bind(a.db, a.openids[1], C2)
    a.sim._call("POST", "/sim/templates/settings", body={"blockers": [a.openids[1]]})
    url = start_receiver(a.bx, receivers).url
    answer = post(url, {"events": [event("s1"), event("s2", customer=C2)]}, a.key)
    assert answer.status_code == 200, answer.text
    wait_for(lambda: a.show("s1")["state"] == "delivered", what="s1 delivered")
    wait_for(lambda: len(a.sms()) == 1, what="the SMS of s2")
    assert a.sms()[0]["phone"] == a.phone(C2)
    shown = a.show("s2")
    assert shown["channel"] == "sms"
    [recipient] = shown["recipients"]  # type: ignore[misc]
    assert recipient["state"] == "unreached" and recipient["msgid"]
    status = json.loads(a.bx("alert", "status", "--format", "json").stdout)
    assert status["received"] == 2 and status["sent_wechat"] == 2 and status["delivered"] == 1
    assert status["sms"] == 1 and status["latency_p50_ms"] is not None
    assert [s["idempotency_key"] for s in a.sms()] == ["alert-sms:core:s2"]  # still once


def test_the_sandbox_core_system_pushes_transactions_to_the_intake(
    alerting: Alerting, receivers: list[Proc], wait_for: Any, tmp_path: Path
) -> None:
    """`bankwx backend sandbox --alerts-url URL` as a core system: POST /sandbox/transactions
    becomes an alert event on the intake; the bound customer's reaches the follower, the unbound
    one's goes by SMS (GET /sandbox/sms)."""
    a = alerting
    bind(a.db, a.openids[0], C1)
    url = start_receiver(a.bx, receivers).url
    feed = AlertFeed(url, a.key)
    with SandboxThread(tmp_path / "core.db", seed=7, key=KEY, alerts=feed) as core:
        for customer in (C1, C2):
            body = {"customer_id": customer, "amount_fen": 880_000, "card": "6222020000001234"}
            answer = httpx.post(core.url + "/sandbox/transactions", json=body, trust_env=False,
                                timeout=30)  # fmt: skip
            assert answer.status_code == 200, answer.text
            pushed = answer.json()
            assert pushed["status"] == 200, pushed
            assert pushed["answer"]["results"][0]["status"] == "accepted"
    wait_for(lambda: a.templates_to(a.openids[0]) == 1, what="C1's alert delivered")
    wait_for(lambda: len(a.sms()) == 1, what="C2's SMS")
    [sms] = a.sms()
    assert sms["phone"] == a.phone(C2) and sms["text"] == "您尾号1234的卡交易8,800.00元"
    [delivered] = a.sim.delivered(kind="template")
    assert delivered["data"]["amount"]["value"] == "8,800.00元"
