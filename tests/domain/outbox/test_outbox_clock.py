"""Business time through the injected clock: backoff, deferral, rate-budget seconds, recovery.

No test here sleeps: the app runs on a FixedClock that the test moves (and that the dispatcher
moves on instead of waiting, when it drains through retries).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from bxtest import APPID, Bankwx
from outboxkit import enqueue_templates, template, unit, with_area

from bankwx_cli import clock as clock_module
from bankwx_cli.clock import FixedClock
from bankwx_cli.context import AppContext
from bankwx_cli.domain import outbox
from bankwx_cli.extensions import Registry
from bankwx_cli.models.outbox import SendResult
from bankwx_cli.sim.driver import SimDriver

CHECKED: list[int] = []


def _gate(app: AppContext, unit: outbox.Unit) -> outbox.Defer | outbox.Cancel | None:
    CHECKED.append(unit.id)
    if unit.source == "gate:closed":
        return outbox.Cancel("the gate is closed")
    if unit.source == "gate:later" and CHECKED.count(unit.id) == 1:
        return outbox.Defer(app.clock.time() + 60, "not yet")
    return None


def install(registry: Registry) -> None:
    """This test module as an area of the registry (outboxkit.with_area)."""
    registry.before_send("gate", _gate)


@pytest.fixture(autouse=True)
def _gated(monkeypatch: pytest.MonkeyPatch) -> None:
    with_area(monkeypatch, __name__, ("before_send",))


def test_backoff_is_clock_time(app: AppContext, sim: SimDriver, clock: FixedClock) -> None:
    [unit_id] = enqueue_templates(app, sim, 1)
    dispatcher = outbox.Dispatcher(app)
    start = clock.time()
    sim.set_faults(fail_rate=1.0, kinds=["busy"], seed=1)
    first = dispatcher.drain()
    assert (first.done, first.retried) == (0, 1)
    assert unit(app, unit_id).next_attempt_at == start + 2  # 2 s after the first attempt
    sim.set_faults(fail_rate=0.0)
    clock.advance(1.9)
    assert dispatcher.drain().done == 0  # not yet due: nothing claimed, nothing waited
    assert unit(app, unit_id).state == "pending"
    clock.advance(0.1)
    assert dispatcher.drain().done == 1
    assert unit(app, unit_id).attempts == 2
    dispatcher.stop()


def test_drain_waits_for_retries_on_the_clock(
    app: AppContext, sim: SimDriver, clock: FixedClock
) -> None:
    """Faults on a third of the calls: every unit goes out; the clock, not the wall, moves."""
    ids = enqueue_templates(app, sim, 20)
    sim.set_faults(fail_rate=0.35, kinds=["busy", "http_503"], seed=7)
    start, wall = clock.time(), time.monotonic()
    dispatcher = outbox.Dispatcher(app)
    report = dispatcher.drain(wait_for_retries=True)
    dispatcher.stop()
    assert report.done == 20 and (report.retried or 0) > 0, report
    assert [unit(app, i).state for i in ids] == ["sent"] * 20
    assert clock.time() - start >= 2  # at least one backoff passed, on the clock
    assert time.monotonic() - wall < 20


def test_rate_budget_seconds_are_clock_seconds(
    app: AppContext, sim: SimDriver, clock: FixedClock, bankwx: Bankwx
) -> None:
    assert bankwx("account", "update", "main", "--rate", "message/template/send=2").exit_code == 0
    enqueue_templates(app, sim, 5)
    start = clock.time()
    dispatcher = outbox.Dispatcher(app)
    report = dispatcher.drain()
    dispatcher.stop()
    assert report.done == 5
    # 2 calls a second: seconds 0 and 1 send two each, second 2 the fifth
    assert int(clock.time() - start) == 2
    assert len(sim.delivered(kind="template")) == 5


def test_deferred_units_wait_for_the_clock(
    app: AppContext, sim: SimDriver, clock: FixedClock
) -> None:
    template_id, data = template(app)
    openid = sim.followers(APPID, limit=1)[0]["openid"]
    payload = {"touser": openid, "template_id": template_id, "data": data}
    with app.store.transaction():
        unit_id = outbox.enqueue(
            app, "main", "template", payload, "later", lane="alert",
            not_before=clock.time() + 3600,
        )  # fmt: skip
    dispatcher = outbox.Dispatcher(app)
    assert dispatcher.drain().done == 0
    clock.advance(3599)
    assert dispatcher.drain().done == 0
    clock.advance(1)
    assert dispatcher.drain().done == 1
    assert unit_id is not None and unit(app, unit_id).state == "sent"
    dispatcher.stop()


def test_before_send_check_cancels_defers_or_lets_go(
    app: AppContext, sim: SimDriver, clock: FixedClock
) -> None:
    CHECKED.clear()
    [closed] = enqueue_templates(app, sim, 1, source="gate:closed")
    sim_followers = sim.followers(APPID, limit=3)
    template_id, data = template(app)
    ids = {}
    with app.store.transaction():
        for follower, source in zip(sim_followers[1:], ("gate:later", "gate:open"), strict=True):
            openid = follower["openid"]
            payload = {"touser": openid, "template_id": template_id, "data": data}
            ids[source] = outbox.enqueue(app, "main", "template", payload, source, lane="alert",
                                         source=source)  # fmt: skip
    dispatcher = outbox.Dispatcher(app)
    report = dispatcher.drain()
    assert report.done == 1
    assert unit(app, closed).state == "cancelled"
    assert unit(app, closed).last_error == "the gate is closed"
    assert unit(app, ids["gate:open"]).state == "sent"
    later = unit(app, ids["gate:later"])
    assert later.state == "pending" and later.next_attempt_at == clock.time() + 60
    clock.advance(60)
    assert dispatcher.drain().done == 1  # checked again when it came due: now it goes
    assert CHECKED.count(ids["gate:later"]) == 2
    assert CHECKED.count(ids["gate:open"]) == 1
    dispatcher.stop()


@pytest.mark.parametrize(("silence", "after"), [(4, 0), (6, 1)])
def test_a_silent_dispatcher_is_dead_after_five_clock_seconds(
    app: AppContext, sim: SimDriver, clock: FixedClock, silence: float, after: int
) -> None:
    enqueue_templates(app, sim, 1)
    silent, other = outbox.Dispatcher(app), outbox.Dispatcher(app)
    silent.heartbeat()  # once, then never again
    assert len(silent.claim()) == 1
    clock.advance(silence)
    assert other.recover() == after
    silent.stop()
    other.stop()


def test_template_units_are_sent_again_only_within_ten_minutes(
    app: AppContext, sim: SimDriver, clock: FixedClock
) -> None:
    [unit_id] = enqueue_templates(app, sim, 1)
    other = outbox.Dispatcher(app)
    first = outbox.Dispatcher(app)
    first.claim()  # never heartbeated: stranded at once
    assert other.recover() == 1
    assert unit(app, unit_id).state == "pending"  # WeChat de-duplicates: send again
    clock.advance(600.5)
    second = outbox.Dispatcher(app)
    second.claim()  # first attempt was 600.5 s ago: WeChat's client_msg_id has expired
    assert other.recover() == 1
    stranded = unit(app, unit_id)
    assert stranded.state == "unknown"
    assert "may or may not have delivered" in stranded.last_error
    for dispatcher in (other, first, second):
        dispatcher.stop()


def test_waiting_on_a_fixed_clock_moves_it_and_takes_no_time() -> None:
    fixed = FixedClock()
    stop = threading.Event()
    wall = time.monotonic()
    assert clock_module.wait(fixed, stop, 3600) is False
    assert fixed.now() == FixedClock().now() + timedelta(hours=1)
    stop.set()
    assert clock_module.wait(fixed, stop, 1) is True
    assert time.monotonic() - wall < 1


def test_a_budget_second_counted_early_is_not_forgotten(app: AppContext) -> None:
    """A send claimed in a second's last moments is counted in the next second (where WeChat
    counts it); a dispatcher whose own clock second is still the earlier one counts there
    too; a clock set back further starts afresh."""
    second = 1_800_000_000
    budget = app.store.outbox
    with app.store.transaction():
        assert budget.take_budget("main", "e", 3, 4, second + 1.02) == 3  # claimed at .92
        assert budget.take_budget("main", "e", 3, 4, second + 0.95) == 1  # the next second's
        assert budget.take_budget("main", "e", 3, 4, second + 1.5) == 0  # spent
        assert budget.take_budget("main", "e", 3, 4, second + 2.0) == 3
        assert budget.take_budget("main", "e", 3, 4, second - 3600.0) == 3


def test_a_send_in_its_second_s_last_moments_waits_for_the_next(
    app: AppContext, sim: SimDriver, clock: FixedClock
) -> None:
    """A unit counted in its own second's budget is not sent in that second's last moments
    (it would reach WeChat in the next second, which counts it there): it goes back to
    pending for the next second, untouched. One counted in the next second's budget (claimed
    in those moments) is sent once that second begins."""
    enqueue_templates(app, sim, 2)
    dispatcher = outbox.Dispatcher(app)  # WeChat's answer time not yet known: 125 ms
    second = clock.time()
    clock.advance(0.5)
    first, other = dispatcher.claim()
    assert (first.window, first.early) == (second, False)
    clock.advance(0.3)  # 800 ms: within twice the answer time of the second's end
    held = dispatcher.send(first)
    assert (held.state, held.next_attempt_at, held.undo_attempt) == ("pending", second + 1, 1)
    assert sim.delivered(kind="template") == []
    sent = dispatcher.send(replace(other, early=True))  # as if claimed now
    assert sent.state == "sent"
    assert clock.time() >= second + 1  # sent once the second that counted it began
    assert len(sim.delivered(kind="template")) == 1


def test_a_run_sends_what_it_handed_back_for_the_next_second(
    app: AppContext, sim: SimDriver, clock: FixedClock
) -> None:
    """A unit claimed in time but sent in its second's last moments goes back to pending for
    the next second (above); a one-shot run (``outbox run``, not waiting for retries) still
    sends it: it was due when the run began. (A fresh clone's suite caught a run that ended
    with its units pending: the claim and the send a few milliseconds apart.)"""
    enqueue_templates(app, sim, 1)
    dispatcher = outbox.Dispatcher(app)  # WeChat's answer time not yet known: 125 ms
    clock.advance(0.5)
    send, late = dispatcher.send, [0.3]

    def send_late(claimed: outbox.Claimed) -> SendResult:
        if late:
            clock.advance(late.pop())  # the first send starts in its second's last moments
        return send(claimed)

    dispatcher.send = send_late  # type: ignore[method-assign]
    report = dispatcher.drain()
    assert report.done == 1, report
    assert len(sim.delivered(kind="template")) == 1


def test_a_slow_answer_widens_the_last_moments_at_once_and_they_narrow_slowly(
    app: AppContext,
) -> None:
    dispatcher = outbox.Dispatcher(app)
    for _ in range(30):
        dispatcher._timed(0.02)
    assert dispatcher._last_moments() == pytest.approx(0.04, abs=0.005)
    dispatcher._timed(0.1)  # one slow answer: the margin covers it from the next send on
    assert dispatcher._last_moments() == pytest.approx(0.2)
    dispatcher._timed(0.02)
    assert 0.04 < dispatcher._last_moments() < 0.2  # narrowing, not back at once
    dispatcher._timed(0.5)
    assert dispatcher._last_moments() == 0.25  # never more than a quarter of a second
