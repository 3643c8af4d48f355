"""The HTTP intake, POST /api/v1/alerts, on a running `bankwx serve`: keys, shapes, limits,
batches, and the path to WeChat and back (job results)."""

from __future__ import annotations

import json
from typing import Any

from alertkit import CUSTOMERS, Alerting, bind, event, post
from bxprocs import Proc, start_receiver


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
    answer = post(url, event("e1", customer="C900"), a.key)
    assert answer.status_code == 200
    assert answer.json() == {"results": [{"event_id": "e1", "status": "accepted", "reason": None}]}
    sources = json.loads(a.bx("alert", "source", "list", "--format", "json").stdout)
    assert sources[0]["name"] == "core" and sources[0]["last_used_at"]
    assert "key" not in sources[0]


def test_a_batch_answers_each_event_in_order(alerting: Alerting, receivers: list[Proc]) -> None:
    a = alerting
    bind(a.db, a.openids[0], "C100")
    url = start_receiver(a.bx, receivers).url
    missing = event("b2")
    del missing["data"]["amount_fen"]
    events = [event("b1"), missing, event("b1"), event("b3", type_="nope"), event("b4")]
    events += [event(f"n{i}", customer="C300") for i in range(60)]  # two transactions
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
    assert post(url, event("r1", customer="C900"), a.key).status_code == 200
    assert post(url, event("r2", customer="C900"), new).status_code == 200
    assert a.bx("alert", "source", "rotate", "core", "--grace", "0").exit_code == 0
    assert post(url, event("r3", customer="C900"), new).status_code == 401
    removed = a.bx("alert", "source", "remove", "core", "--yes")
    assert removed.exit_code == 0, removed.output


def test_served_alerts_reach_followers_and_blocked_ones_go_to_sms(
    alerting: Alerting, receivers: list[Proc], wait_for: Any
) -> None:
    a = alerting
    bind(a.db, a.openids[0], "C100")
    bind(a.db, a.openids[1], "C200")
    a.sim._call("POST", "/sim/templates/settings", body={"blockers": [a.openids[1]]})
    url = start_receiver(a.bx, receivers).url
    answer = post(url, {"events": [event("s1"), event("s2", customer="C200")]}, a.key)
    assert answer.status_code == 200, answer.text
    wait_for(lambda: a.show("s1")["state"] == "delivered", what="s1 delivered")
    wait_for(lambda: len(a.gateway.sent) == 1, what="the SMS of s2")
    assert a.gateway.sent[0]["phone"] == CUSTOMERS["C200"]
    shown = a.show("s2")
    assert shown["channel"] == "sms"
    [recipient] = shown["recipients"]  # type: ignore[misc]
    assert recipient["state"] == "unreached" and recipient["msgid"]
    status = json.loads(a.bx("alert", "status", "--format", "json").stdout)
    assert status["received"] == 2 and status["sent_wechat"] == 2 and status["delivered"] == 1
    assert status["sms"] == 1 and status["latency_p50_ms"] is not None
