"""Senders per kind and hooks per source: unknown kinds, final-state hooks, delivery reports."""

from __future__ import annotations

from typing import Any

import pytest
from bxtest import ORIGINAL_ID, Bankwx
from outboxkit import enqueue_templates, insert_raw, unit, with_area

from bankwx_cli import extensions
from bankwx_cli.context import AppContext
from bankwx_cli.domain import outbox
from bankwx_cli.domain.routing import Engine
from bankwx_cli.errors import ValidationError
from bankwx_cli.extensions import Registry
from bankwx_cli.models.outbox import SendResult
from bankwx_cli.sim.driver import SimDriver
from bankwx_cli.wechat.callback import Inbound

# What the hooks below saw, by source type: (unit id, state, in a transaction?)
SEEN: dict[str, list[tuple[int, str, bool]]] = {}


def _seen(app: AppContext, unit: outbox.Unit) -> None:
    SEEN.setdefault(unit.source_type or "", []).append(
        (unit.id, unit.state, app.store.db.in_transaction)
    )


def _broken(app: AppContext, unit: outbox.Unit) -> None:
    app.store.outbox.pause("main", "agent", "hook", "2026-01-01T00:00:00Z")  # undone below
    raise RuntimeError("a consumer's bug")


REPORTS: list[tuple[str, int, str]] = []


def _first_reader(app: AppContext, unit: outbox.Unit, status: str) -> None:
    REPORTS.append(("first", unit.id, status))


def _second_reader(app: AppContext, unit: outbox.Unit, status: str) -> None:
    REPORTS.append(("second", unit.id, status))


def install(registry: Registry) -> None:
    """This test module as an area of the registry (outboxkit.with_area)."""
    registry.on_final("hooked", _seen)
    registry.on_final("broken", _broken)
    registry.on_final("broken", _seen)  # a second consumer of the same source still runs
    registry.on_delivery("hooked", _first_reader)
    registry.on_delivery("hooked", _second_reader)


@pytest.fixture(autouse=True)
def _forget(monkeypatch: pytest.MonkeyPatch) -> None:
    SEEN.clear()
    REPORTS.clear()
    with_area(monkeypatch, __name__, ("final", "delivery"))


def test_unknown_kind_fails_alone_and_never_stalls_a_lane(
    app: AppContext, sim: SimDriver, bankwx: Bankwx
) -> None:
    """A unit of kind 'nope', first in the reply lane: it fails with its reason, the rest go."""
    bad = insert_raw(app, "nope", source="hooked:1")
    good = enqueue_templates(app, sim, 3, lane="reply")
    run = bankwx("outbox", "run")
    assert run.exit_code == 1, run.output  # a failure: the operator must see it
    assert f"unit {bad}: unknown outbox kind 'nope'" in run.stderr
    assert "1 failed" in run.stderr and "3 sent" in run.stderr
    assert unit(app, bad).state == "failed"
    assert "no sender is declared for it" in unit(app, bad).last_error
    assert [unit(app, i).state for i in good] == ["sent"] * 3
    assert len(sim.delivered(kind="template")) == 3
    # the unknown kind's final-state hook ran once, in the transaction that failed it
    assert SEEN["hooked"] == [(bad, "failed", True)]
    again = bankwx("outbox", "run")
    assert again.exit_code == 0 and SEEN["hooked"] == [(bad, "failed", True)]


def test_unknown_kind_is_refused_at_enqueue(app: AppContext) -> None:
    with pytest.raises(
        ValidationError, match="outbox kind 'nope' is unknown: use custom, kfsession, mass"
    ):
        outbox.enqueue(app, "main", "nope", {}, "k", lane="reply")
    with pytest.raises(ValidationError, match="outbox kind 'test_note' is unknown"):
        outbox.enqueue(app, "main", "test_note", {"text": "x"}, "k", lane="reply")


def test_final_state_hooks_run_once_per_final_state(app: AppContext, sim: SimDriver) -> None:
    sent = enqueue_templates(app, sim, 2, source="hooked:7")
    dispatcher = outbox.Dispatcher(app)
    units = dispatcher.claim()
    results = [dispatcher.send(u) for u in units]
    dispatcher.record(units, results)
    dispatcher.record(units, results)  # recorded twice (a late duplicate): no second call
    assert sorted(SEEN["hooked"]) == [(i, "sent", True) for i in sent]

    # cancelled: once, however often the source is cancelled
    with app.store.transaction():
        more = outbox.enqueue_custom(
            app, "main", "o1", {"msgtype": "text"}, "c1", source="hooked:8"
        )
    assert outbox.cancel_source(app, "hooked:8") == 1
    assert outbox.cancel_source(app, "hooked:8") == 0
    assert SEEN["hooked"][-1] == (more, "cancelled", True)

    # unknown: a custom unit stranded by a dispatcher that died
    with app.store.transaction():
        lost = outbox.enqueue_custom(
            app, "main", "o1", {"msgtype": "text"}, "c2", source="hooked:9"
        )
    dead = outbox.Dispatcher(app)
    assert [c.unit.id for c in dead.claim()] == [lost]  # claimed, never heartbeated: an orphan
    assert dispatcher.recover() == 1
    assert dispatcher.recover() == 0
    assert unit(app, lost).state == "unknown"
    assert SEEN["hooked"][-1] == (lost, "unknown", True)
    assert len(SEEN["hooked"]) == 4
    dispatcher.stop()
    dead.stop()


def test_a_failing_hook_undoes_only_its_own_writes(app: AppContext, sim: SimDriver) -> None:
    ids = enqueue_templates(app, sim, 1, source="broken:1")
    report = outbox.Dispatcher(app).drain()
    assert report.done == 1
    assert unit(app, ids[0]).state == "sent"
    assert app.store.outbox.pauses() == []  # the broken hook's pause was rolled back
    assert SEEN["broken"] == [(ids[0], "sent", True)]


def test_delivery_reports_reach_every_consumer(app: AppContext, sim: SimDriver) -> None:
    ids = enqueue_templates(app, sim, 1, source="hooked:3")
    assert outbox.Dispatcher(app).drain().done == 1
    msgid = unit(app, ids[0]).wechat_msgid
    engine = Engine(app)
    engine.refresh(force=True)
    fields: dict[str, Any] = {"Status": "success"}
    inbound = Inbound(
        "event", "templatesendjobfinish", "o1", ORIGINAL_ID, 1, msgid, "", "", "", fields, False
    )
    assert outbox.job_finished(app, engine.runtime("main"), inbound) is None  # others may run
    readers = [(reader, unit_id) for reader, unit_id, _ in REPORTS]
    assert readers == [("first", ids[0]), ("second", ids[0])]
    assert {status for _, _, status in REPORTS} == {"success"}
    assert unit(app, ids[0]).delivery_status == "success"


def test_a_dead_dispatchers_late_result_is_not_recorded(app: AppContext, sim: SimDriver) -> None:
    """A claimed, was found dead, B sent the unit again: A's late answer changes nothing."""
    [unit_id] = enqueue_templates(app, sim, 1, source="hooked:5")
    slow, other = outbox.Dispatcher(app), outbox.Dispatcher(app)
    claimed = slow.claim()  # never heartbeats: an orphan claim
    assert other.recover() == 1  # a template unit within ten minutes: pending again
    assert other.drain().done == 1
    late = SendResult(unit_id, "failed", last_error="late")
    slow.record(claimed, [late])
    assert unit(app, unit_id).state == "sent"
    assert SEEN["hooked"] == [(unit_id, "sent", True)]
    slow.stop()
    other.stop()


def test_the_built_in_kinds_and_their_crash_policies() -> None:
    senders = extensions.registry().senders(tests=True)
    declared = {k: (s.crash, s.dedup_window_s, s.budget) for k, s in senders.items()}
    assert declared["custom"] == ("at_most_once", None, "/cgi-bin/message/custom/send")
    assert declared["template"] == ("idempotent", 600.0, "/cgi-bin/message/template/send")
    assert declared["mass"] == ("idempotent", None, "/cgi-bin/message/mass/send")
    assert senders["test_note"].test_only and senders["test_note"].area == "trials"
    assert "test_note" not in extensions.registry().senders(tests=False)
    areas = {k: s.area for k, s in senders.items() if k != "test_note"}
    assert areas == {"custom": "outbox", "template": "outbox", "mass": "outbox",
                     "kfsession": "agents", "sms": "alerts"}  # fmt: skip
    assert declared["sms"] == ("idempotent", 86_400.0, "sms")
    with pytest.raises(ValueError, match="crash policy 'twice' is invalid"):
        Registry().sender("x", budget="x", crash="twice", rate=1)  # type: ignore[arg-type]
    registry = Registry()
    registry.sender("custom", budget="x", crash="idempotent", rate=1)(outbox.send_custom)
    with pytest.raises(RuntimeError, match="outbox kind 'custom' is registered twice"):
        registry.sender("custom", budget="y", crash="idempotent", rate=1)
