"""Broadcasts on the outbox: finished by final-state hooks, retried on the injected clock."""

from __future__ import annotations

import json
import time
from collections import Counter

from bxtest import Bankwx
from outboxkit import template

from bankwx_cli.clock import FixedClock
from bankwx_cli.context import AppContext
from bankwx_cli.domain import broadcasts
from bankwx_cli.settings import from_environment
from bankwx_cli.sim.driver import SimDriver


def test_a_broadcast_finishes_when_outbox_run_sends_its_last_unit(
    with_account: Bankwx, sim: SimDriver
) -> None:
    bankwx = with_account
    assert bankwx("operator", "add", "bob", "--role", "approver").exit_code == 0
    assert bankwx("follower", "sync").exit_code == 0
    created = bankwx("broadcast", "create", "--text", "通知", "--to-all", "--format", "json")
    broadcast_id = str(json.loads(created.stdout)["id"])
    assert bankwx("broadcast", "submit", broadcast_id).exit_code == 0
    approved = bankwx("broadcast", "approve", broadcast_id, env={"BANKWX_OPERATOR": "bob"})
    assert approved.exit_code == 0, approved.output
    # the send expands the broadcast, but its lane is paused: it returns with units pending
    assert bankwx("outbox", "pause", "--lane", "broadcast").exit_code == 0
    started = bankwx("broadcast", "send", broadcast_id, "--yes")
    assert started.exit_code == 0, started.output

    def state() -> str:
        shown = bankwx("broadcast", "show", broadcast_id, "--format", "json")
        return str(json.loads(shown.stdout)["state"])

    assert state() == "sending"
    assert bankwx("outbox", "resume").exit_code == 0
    run = bankwx("outbox", "run")  # another dispatcher than the send's
    assert run.exit_code == 0, run.output
    assert state() == "sent"
    assert len(sim.delivered(kind="mass")) == 30
    audit = json.loads(bankwx("audit", "--action", "broadcast.finish", "--format", "json").stdout)
    assert len(audit) == 1


def test_a_broadcast_rides_out_faults_on_the_clock(
    with_account: Bankwx, sim: SimDriver, clock: FixedClock
) -> None:
    """WeChat busy on a third of the calls, no retries in the client: the outbox's backoff
    carries the broadcast through, on the injected clock, without waiting for it."""
    bankwx = with_account
    assert bankwx("operator", "add", "bob", "--role", "approver").exit_code == 0
    assert bankwx("follower", "sync").exit_code == 0
    assert bankwx("template", "sync").exit_code == 0
    app = AppContext(from_environment(), clock=clock)
    try:
        template_id, data = template(app)
        created = bankwx(
            "broadcast", "create", "--template", template_id, "--data", json.dumps(data),
            "--to-all", "--format", "json",
        )  # fmt: skip
        assert created.exit_code == 0, created.output
        broadcast_id = int(json.loads(created.stdout)["id"])
        assert bankwx("broadcast", "submit", str(broadcast_id)).exit_code == 0
        bob = {"BANKWX_OPERATOR": "bob"}
        assert bankwx("broadcast", "approve", str(broadcast_id), env=bob).exit_code == 0
        sim.set_faults(fail_rate=0.3, kinds=["busy", "http_503", "rate_limit"], seed=3)
        start, wall = clock.time(), time.monotonic()
        finished, report = broadcasts.send(app, broadcast_id)
    finally:
        app.close()
    assert finished.state == "sent", report
    assert report.done == 30 and (report.retried or 0) > 0
    delivered = Counter(d["openid"] for d in sim.delivered(kind="template"))
    assert len(delivered) == 30 and max(delivered.values()) == 1
    assert clock.time() - start >= 2  # backoffs passed on the clock
    assert time.monotonic() - wall < 30
