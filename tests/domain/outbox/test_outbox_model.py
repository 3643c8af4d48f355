"""Outbox units as one frozen model: its JSON shape in one place, claims that mutate nothing."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sqlite3
from datetime import UTC, datetime

import pytest
from bxtest import Bankwx
from outboxkit import enqueue_templates, insert_raw, unit

from bankwx_cli.context import AppContext
from bankwx_cli.domain import outbox
from bankwx_cli.models.outbox import Claimed, OutboxUnit
from bankwx_cli.sim.driver import SimDriver


def _columns(app: AppContext) -> list[str]:
    with sqlite3.connect(str(app.settings.db)) as conn:
        names = [r[1] for r in conn.execute("PRAGMA table_info(outbox)")]
    conn.close()
    return names


def test_list_and_retry_give_one_json_shape(app: AppContext, bankwx: Bankwx) -> None:
    """The store's columns in its order, the payload opened, next_attempt_at as ISO text;
    `outbox retry --format json` gives the same shape as `outbox list`."""
    failed = insert_raw(app, "nope")  # a kind no sender handles: it fails when run
    assert bankwx("outbox", "run").exit_code == 1
    (listed,) = json.loads(bankwx("outbox", "list", "--format", "json").stdout)
    assert list(listed) == _columns(app)
    stored = unit(app, failed)
    assert listed == json.loads(json.dumps(stored.to_json()))
    assert (listed["id"], listed["state"], listed["attempts"]) == (failed, "failed", 0)
    assert listed["payload"] == {} and "unknown outbox kind 'nope'" in listed["last_error"]
    at = datetime.fromtimestamp(stored.next_attempt_at, UTC)
    assert listed["next_attempt_at"] == at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    retried = bankwx("outbox", "retry", str(failed), "--format", "json")
    assert retried.exit_code == 0, retried.output
    shown = json.loads(retried.stdout)
    assert list(shown) == list(listed) and shown["state"] == "pending"
    assert shown == json.loads(json.dumps(unit(app, failed).to_json()))


def test_retry_for_people_says_one_line_and_csv_keeps_its_columns(
    app: AppContext, bankwx: Bankwx
) -> None:
    failed = insert_raw(app, "nope")
    assert bankwx("outbox", "run").exit_code == 1
    table = bankwx("outbox", "list", "--format", "csv")
    rows = list(csv.reader(io.StringIO(table.stdout)))
    assert rows[0] == [
        "id", "kind", "lane", "account", "openid", "state", "attempts", "next_attempt_at",
        "idempotency_key", "last_error",
    ]  # fmt: skip
    assert rows[1][:3] == [str(failed), "nope", "reply"] and rows[1][5] == "failed"
    retried = bankwx("outbox", "retry", str(failed), "--format", "plain")
    assert retried.exit_code == 0, retried.output
    assert retried.stdout == ""
    assert f"Unit {failed} is pending again; a dispatcher will send it." in retried.stderr


def test_a_claim_pairs_the_unit_with_its_second_and_changes_no_unit(
    app: AppContext, sim: SimDriver
) -> None:
    ids = enqueue_templates(app, sim, 2, lane="alert")
    dispatcher = outbox.Dispatcher(app)
    claimed = dispatcher.claim()
    assert all(isinstance(c, Claimed) and isinstance(c.unit, OutboxUnit) for c in claimed)
    assert [c.unit.id for c in claimed] == ids
    assert {c.window for c in claimed} == {int(app.clock.time())}
    # the claimed values are the units as they were due; the store has them sending
    assert [c.unit.state for c in claimed] == ["pending", "pending"]
    assert [unit(app, i).state for i in ids] == ["sending", "sending"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        claimed[0].unit.state = "sent"  # type: ignore[misc]
    results = [dispatcher.send(c) for c in claimed]
    assert [r.state for r in results] == ["sent", "sent"]
    dispatcher.record(claimed, results)
    assert [(unit(app, i).state, unit(app, i).attempts) for i in ids] == [("sent", 1)] * 2
    dispatcher.stop()
