"""A burst of alerts through the HTTP intake, `bankwx serve` killed by SIGKILL at seeded points
and restarted, the sender posting again what was not acknowledged: every alert exactly once,
by WeChat (``/sim/delivered``) or by SMS (the sandbox's ``/sandbox/sms``), never both, none
lost."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import httpx
from alertkit import Alerting, bind, event, post
from bxprocs import Proc, start_receiver

EVENTS = 1000
BATCH = 3


def test_a_burst_survives_sigkill_at_seeded_points(
    alerting: Alerting, receivers: list[Proc], wait_for: Any
) -> None:
    a = alerting
    # the sandbox's eight customers: four bound to a follower each, one bound to the refusing
    # follower, three unbound
    bound = a.openids[:4]
    refuser = a.openids[4]
    customers = [f"C{n:06d}" for n in range(1, 9)]
    for openid, customer in zip(bound, customers[:4], strict=True):
        bind(a.db, openid, customer)
    bind(a.db, refuser, customers[4])
    a.sim._call("POST", "/sim/templates/settings", body={"refusers": [refuser]})
    assert a.bx("account", "update", "main", "--rate", "message/template/send=400").exit_code == 0
    events = []
    for i in range(EVENTS):
        if i % 5 == 0:
            customer = customers[5 + (i // 5) % 3]  # unbound: SMS
        elif i % 5 == 1:
            customer = customers[4]  # the refusing follower's: SMS after 43101
        else:
            customer = customers[i % 4]
        events.append(event(f"k{i}", customer=customer))
    by_wechat = Counter(e["customer_id"] for e in events if e["customer_id"] in customers[:4])
    wechat_ids = {e["event_id"] for e in events if e["customer_id"] in customers[:4]}
    by_sms = {f"alert-sms:core:{e['event_id']}" for e in events if e["event_id"] not in wechat_ids}
    pending = [events[i : i + BATCH] for i in range(0, EVENTS, BATCH)]
    acked = [0]

    def send(url: str) -> None:
        while pending:
            try:
                answer = post(url, {"events": pending[0]}, a.key)
            except httpx.HTTPError:
                return  # the receiver died: post again to the next one
            if answer.status_code != 200:
                return
            assert all(r["status"] in ("accepted", "duplicate") for r in answer.json()["results"])
            acked[0] += len(pending.pop(0))

    for point in (1, 250, 999, None):
        proc = start_receiver(a.bx, receivers, "--quiet")
        sender = threading.Thread(target=send, args=(proc.url,), daemon=True)
        sender.start()
        if point is None:
            sender.join(timeout=120)
            break
        wait_for(lambda point=point: acked[0] >= point or not pending, timeout=60)
        proc.kill()
        sender.join(timeout=30)
    assert not pending

    def done() -> bool:
        return len(a.sim.delivered(kind="template")) >= sum(by_wechat.values()) and len(
            a.sms()
        ) >= len(by_sms)

    wait_for(done, timeout=180, what="every alert sent")
    delivered = a.sim.delivered(kind="template")
    per_follower = Counter(d["openid"] for d in delivered)
    assert per_follower == Counter({bound[customers.index(c)]: n for c, n in by_wechat.items()})
    assert max(Counter(d["client_msg_id"] for d in delivered).values()) == 1
    assert refuser not in per_follower
    sent = a.sms()  # GET /sandbox/sms
    keys = Counter(s["idempotency_key"] for s in sent)
    assert set(keys) == by_sms and max(keys.values()) == 1
    phone = {c: a.phone(c) for c in customers[4:]}  # each SMS to its event's customer
    customer_of = {f"alert-sms:core:{e['event_id']}": e["customer_id"] for e in events}
    assert all(s["phone"] == phone[customer_of[s["idempotency_key"]]] for s in sent)
    # none in both: WeChat's messages (client_msg_id alert:core:EVENT:OPENID) and the SMS
    # (alert-sms:core:EVENT) name disjoint events, together every event
    by_template = {d["client_msg_id"].split(":")[2] for d in delivered}
    by_text = {k.split(":")[2] for k in keys}
    assert by_template == wechat_ids and not by_template & by_text
    assert len(by_template | by_text) == EVENTS
