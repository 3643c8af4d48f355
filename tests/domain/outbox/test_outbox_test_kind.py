"""A kind declared by the test-only area (BANKWX_TEST_ACTIONS=1), sent by real processes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from bxprocs import serve
from bxtest import APPID, Bankwx

from bankwx_cli.context import AppContext
from bankwx_cli.domain import outbox
from bankwx_cli.settings import from_environment
from bankwx_cli.sim.driver import SimDriver

TEST_ACTIONS = {"BANKWX_TEST_ACTIONS": "1"}


@pytest.fixture
def test_app(
    with_account: Bankwx, sim: SimDriver, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppContext]:
    """This process's context with the test-only area on."""
    monkeypatch.setenv("BANKWX_TEST_ACTIONS", "1")
    context = AppContext(from_environment())
    try:
        yield context
    finally:
        context.close()


def _note(app: AppContext, openid: str, text: str) -> int:
    with app.store.transaction():
        unit_id = outbox.enqueue(
            app, "main", "test_note", {"text": text}, f"note:{text}", lane="agent", openid=openid
        )
    assert unit_id is not None
    return unit_id


def _texts(sim: SimDriver) -> list[str]:
    return [str(d["content"]) for d in sim.delivered(kind="custom")]


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_dispatches_a_test_kind(
    test_app: AppContext, sim: SimDriver, with_account: Bankwx, workers: int
) -> None:
    proc = serve("--workers", str(workers), env=TEST_ACTIONS)
    try:
        registered = with_account("sim", "register", "main", "--callback", f"{proc.url}/wx/main")
        assert registered.exit_code == 0, registered.output
        openid = sim.pick_openid(APPID)
        assert sim.send(APPID, openid, text="你好")["status"] == "replied"  # opens the window
        unit_id = _note(test_app, openid, f"测试种类{workers}")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any("测试种类" in t for t in _texts(sim)):
            time.sleep(0.1)
        assert [t for t in _texts(sim) if "测试种类" in t] == [f"测试种类{workers}"]
        found = test_app.store.outbox.get(unit_id)
        assert found is not None and found.state == "sent"
    finally:
        proc.stop()


def test_outbox_run_without_the_test_area_refuses_the_kind(
    test_app: AppContext, sim: SimDriver, with_account: Bankwx
) -> None:
    assert with_account("sim", "register", "main").exit_code == 0
    openid = sim.pick_openid(APPID)
    sim.send(APPID, openid, text="你好")  # no receiver: the window opens all the same
    unit_id = _note(test_app, openid, "只在测试中")
    refused = with_account("outbox", "run", env={"BANKWX_TEST_ACTIONS": "0"})
    assert refused.exit_code == 1
    assert f"unit {unit_id}: unknown outbox kind 'test_note'" in refused.stderr
    assert _texts(sim) == []
    assert with_account("outbox", "retry", str(unit_id)).exit_code == 0
    sent = with_account("outbox", "run", env=TEST_ACTIONS)
    assert sent.exit_code == 0, sent.output
    assert _texts(sim) == ["只在测试中"]
