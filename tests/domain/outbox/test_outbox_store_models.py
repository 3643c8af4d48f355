"""The outbox store answers with models (dispatchers, backlog, pauses, counts), never dicts; and
a dispatcher pipelines its sends, hands back what it still holds when it stops, and says which
source a failed unit belongs to."""

from __future__ import annotations

import json

from bxtest import Bankwx
from outboxkit import enqueue_templates, template, unit

from bankwx_cli.clock import FixedClock
from bankwx_cli.context import AppContext
from bankwx_cli.domain import outbox
from bankwx_cli.models.outbox import Dispatcher, LaneBacklog, OutboxRun, Pause, UnitCounts
from bankwx_cli.sim.driver import SimDriver


def test_the_store_gives_models(app: AppContext, sim: SimDriver, clock: FixedClock) -> None:
    enqueue_templates(app, sim, 3, source="models:1")
    counts = app.store.outbox.counts("models:1")
    assert counts == UnitCounts({"pending": 3})
    assert (counts.total, counts.open, counts.get("sent")) == (3, 3, 0)
    assert counts.to_json() == {"pending": 3}
    assert app.store.outbox.counts("models:none").to_json() == {}

    clock.advance(4)
    [backlog] = app.store.outbox.backlog(clock.time())
    assert backlog == LaneBacklog("alert", 3, 4.0)

    dispatcher = outbox.Dispatcher(app)
    dispatcher.heartbeat()
    [row] = app.store.outbox.dispatchers()
    assert isinstance(row, Dispatcher) and row.holder == dispatcher.holder
    assert row.heartbeat_at == clock.time()

    outbox.pause(app, "main", "broadcast")
    [paused] = app.store.outbox.pauses()
    assert isinstance(paused, Pause) and (paused.account, paused.lane) == ("main", "broadcast")
    assert paused.to_json()["paused_by"] == app.operator
    outbox.resume(app, "main", "broadcast")
    dispatcher.stop()


def test_a_stopped_dispatcher_hands_back_what_it_still_held(
    app: AppContext, sim: SimDriver
) -> None:
    [template_id] = enqueue_templates(app, sim, 1)
    with app.store.transaction():
        custom_id = outbox.enqueue_custom(app, "main", "o1", {"msgtype": "text"}, "c1")
    dispatcher = outbox.Dispatcher(app)
    assert len(dispatcher.claim()) == 2  # claimed, never sent: an interrupted run
    dispatcher.stop()
    assert unit(app, template_id).state == "pending"  # WeChat de-duplicates it: sent again
    lost = unit(app, custom_id)  # nothing de-duplicates it: it may have gone out
    assert lost.state == "unknown" and "may or may not have delivered" in (lost.last_error or "")
    assert app.store.outbox.counts().get("sending") == 0


def test_the_pipeline_sends_everything_once_and_names_the_source(
    app: AppContext, sim: SimDriver, bankwx: Bankwx
) -> None:
    assert (
        bankwx("account", "update", "main", "--rate", "message/template/send=1000").exit_code == 0
    )
    ids = enqueue_templates(app, sim, 25, source="pipe:1")
    dispatcher = outbox.Dispatcher(app, threads=3)
    report = dispatcher.drain()
    dispatcher.stop()
    assert report.done == 25 and not report.failures
    assert {unit(app, i).state for i in ids} == {"sent"}
    assert len(sim.delivered(kind="template")) == 25

    template_id, data = template(app)
    with app.store.transaction():
        bad = outbox.enqueue_template(
            app, "main", "oNotAFollower0000", template_id, data, "bad", source="pipe:2"
        )
    report = outbox.Dispatcher(app).drain()
    [failure] = report.failures
    assert failure.what == f"unit {bad} (pipe 2)" and failure.wechat, failure


def test_an_outbox_run_as_json(app: AppContext) -> None:
    run = OutboxRun(outbox.report(sent=3, retried=1), 1.23456, "main")
    shown = run.to_json()
    assert shown == {
        "account": "main", "sent": 3, "failed": 0, "unknown": 0, "to_retry": 1,
        "seconds": 1.235, "exit_code": 0, "failures": [],
    }  # fmt: skip
    assert json.loads(json.dumps(shown)) == shown
