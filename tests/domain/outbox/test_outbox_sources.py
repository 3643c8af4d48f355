"""Broadcasts learn from the outbox's final-state hooks: any dispatcher finishes them."""

from __future__ import annotations

import json

from bxtest import Bankwx

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
