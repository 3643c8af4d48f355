"""The agents' periodic work (every `bankwx serve` runs it each second): automatic assignment by
the group's policy, queue timeouts, idle sessions closed, sessions whose window closed expired.
In-process runs move bankwx's clock with BANKWX_TEST_CLOCK_OFFSET, as the simulator's moves."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from bxprocs import Proc, SimOptions, serve
from bxtest import APPID, Bankwx, add_account_args

from bankwx_cli.context import AppContext
from bankwx_cli.domain import agents
from bankwx_cli.settings import from_environment
from bankwx_cli.sim.driver import SimDriver


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=6)


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def js(result: Any) -> Any:
    return json.loads(ok(result).stdout)


@pytest.fixture
def desk(store_ready: Bankwx, sim: SimDriver, receivers: list[Proc]) -> Bankwx:
    bankwx = store_ready
    ok(bankwx(*add_account_args()))
    for name in ("zhang", "li"):
        ok(bankwx("operator", "add", name, "--role", "agent"))
    ok(bankwx("agent", "group", "add", "retail", "--queue-timeout", "30"))
    ok(bankwx("agent", "add", "zhang", "--groups", "retail", "--max-sessions", "2"))
    ok(bankwx("agent", "add", "li", "--groups", "retail", "--max-sessions", "2"))
    ok(bankwx("account", "set", "main", "default_group", "retail"))
    ok(bankwx("keyword", "add", "人工", "--match", "exact", "--action", "talk_to_agent"))
    proc = serve()
    receivers.append(proc)
    ok(bankwx("sim", "register", "main", "--callback", f"{proc.url}/wx/main"))
    return bankwx


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """tick(seconds): run the periodic work in this process, bankwx's clock moved on."""
    monkeypatch.setenv("BANKWX_TEST_ACTIONS", "1")
    opened: list[AppContext] = []

    def tick(seconds: float) -> None:
        monkeypatch.setenv("BANKWX_TEST_CLOCK_OFFSET", str(seconds))
        app = AppContext(from_environment())
        opened.append(app)
        agents.tick(app)

    yield tick
    for app in opened:
        app.close()


def sessions(bankwx: Bankwx) -> list[dict[str, Any]]:
    return js(bankwx("agent", "sessions", "--all", "--format", "json"))  # type: ignore[no-any-return]


def test_the_receiver_assigns_waiting_followers_to_online_agents(
    desk: Bankwx, sim: SimDriver
) -> None:
    openid = sim.pick_openid(APPID)
    ok(desk("agent", "status", "online", "--agent", "zhang"))
    sim.send(APPID, openid, text="人工")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sessions(desk)[0]["state"] != "open":
        time.sleep(0.2)
    (session,) = sessions(desk)
    assert (session["state"], session["agent"]) == ("open", "zhang")
    assert js(desk("audit", "--action", "agent.assign", "--format", "json"))


def test_policies_pick_the_agent(desk: Bankwx, sim: SimDriver, later: Any) -> None:
    followers = [f["openid"] for f in sim.followers(APPID)][:4]
    ok(desk("agent", "status", "online", "--agent", "zhang"))
    ok(desk("agent", "status", "busy", "--agent", "li"))  # busy: no new followers
    sim.send(APPID, followers[0], text="人工")
    later(0)
    ok(desk("agent", "status", "online", "--agent", "li"))
    for openid in followers[1:]:
        sim.send(APPID, openid, text="人工")
    later(0)  # round-robin: li (never assigned), then zhang, then li
    by_openid = {s["openid"]: s["agent"] for s in sessions(desk)}
    assert [by_openid[o] for o in followers] == ["zhang", "li", "zhang", "li"]
    loads = {a["name"]: a["sessions"] for a in js(desk("agent", "list", "--format", "json"))}
    assert loads == {"zhang": 2, "li": 2}  # never above the maximum


def test_a_wait_times_out_with_the_timeout_text(desk: Bankwx, sim: SimDriver, later: Any) -> None:
    ok(desk("agent", "status", "busy", "--agent", "zhang"))  # present, takes nobody new
    ok(desk("agent", "group", "update", "retail", "--timeout-text", "排队超时，请稍后再试"))
    openid = sim.pick_openid(APPID)
    sim.send(APPID, openid, text="人工")
    later(10)
    assert sessions(desk)[0]["state"] == "waiting"
    later(31)
    (session,) = sessions(desk)
    assert (session["state"], session["close_reason"]) == ("closed", "timeout")
    (unit,) = js(desk("outbox", "list", "--format", "json"))
    assert (unit["lane"], unit["source"]) == ("agent", f"agent-session:{session['id']}")
    later(32)  # again: nothing twice
    assert len(js(desk("outbox", "list", "--format", "json"))) == 1


def test_idle_sessions_close_and_closed_windows_expire(
    desk: Bankwx, sim: SimDriver, later: Any
) -> None:
    ok(desk("account", "set", "main", "idle_close", "1"))
    ok(desk("agent", "status", "online", "--agent", "zhang"))
    first, second = [f["openid"] for f in sim.followers(APPID)][:2]
    sim.send(APPID, first, text="人工")
    later(0)
    later(5)
    (idle,) = sessions(desk)
    assert (idle["state"], idle["close_reason"]) == ("closed", "idle")
    ok(desk("account", "set", "main", "idle_close", "86400"))
    sim.send(APPID, second, text="人工")
    later(0)
    later(48 * 3600 + 5)
    expired = [s for s in sessions(desk) if s["openid"] == second]
    assert expired[0]["state"] == "expired"
