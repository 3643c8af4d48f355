"""Bank actions against WeChat's limits, through `bankwx serve`, the simulator and the sandbox:
a late answer to a click whose window closed first (the simulator's clock moved 61 s) reaches
nobody, its unit failed with 45015; and 40 balance requests held by a 10 s back-end do not keep
a subscribe from its welcome in time."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from bxprocs import Proc, SimOptions, start
from bxtest import APPID, Bankwx

from bankwx_cli.sim.driver import SimDriver

WELCOME = "欢迎关注！"


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=45)


def _wait(condition: Any, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_late_answer_after_the_click_window_closed_reaches_nobody(
    banked: Bankwx,
    sim: SimDriver,
    control: httpx.Client,
    customers: list[dict[str, Any]],
    receivers: list[Proc],
) -> None:
    bx = banked
    assert bx("keyword", "add", "BALANCE", "--match", "click", "--action", "balance").exit_code == 0
    proc = start(["serve", "--port", "0", "--deadline", "0.5"], health="/healthz")
    receivers.append(proc)
    assert bx("sim", "register", "main", "--callback", f"{proc.url}/wx/main").exit_code == 0
    openid = sim.pick_openid(APPID)
    assert bx("follower", "bind", openid, "--customer", customers[0]["id"], "--yes").exit_code == 0
    control.post("/sandbox/faults", json={"delay_ms": 2000})

    got = sim.send(APPID, openid, event="click", key="BALANCE")
    assert got["status"] == "success", got
    sim.advance_clock(61)  # the click's one-minute window closes before the answer is ready

    def failed() -> list[dict[str, Any]]:
        units = json.loads(bx("outbox", "list", "--format", "json").stdout)
        return [u for u in units if u["state"] == "failed"]

    assert _wait(lambda: bool(failed())), bx("outbox", "list", "--format", "json").stdout
    unit = failed()[0]
    assert unit["kind"] == "custom" and unit["openid"] == openid
    assert "45015" in str(unit["last_error"]), unit
    assert sim.delivered(kind="custom") == []


@pytest.mark.slow
@pytest.mark.serial
def test_held_balance_requests_do_not_keep_a_subscribe_from_its_welcome(
    banked: Bankwx,
    sim: SimDriver,
    control: httpx.Client,
    customers: list[dict[str, Any]],
    receivers: list[Proc],
    tmp_path: Path,
) -> None:
    bx = banked
    assert bx("keyword", "add", "余额", "--match", "exact", "--action", "balance").exit_code == 0
    log_path = tmp_path / "serve.log"
    proc = start(["-v", "serve", "--port", "0"], health="/healthz", log=log_path)
    receivers.append(proc)
    assert bx("sim", "register", "main", "--callback", f"{proc.url}/wx/main").exit_code == 0
    followers = [str(f["openid"]) for f in sim.followers(APPID, limit=45)]
    askers, newcomer = followers[:40], followers[44]
    for openid in askers:
        assert (
            bx("follower", "bind", openid, "--customer", customers[0]["id"], "--yes").exit_code == 0
        )
    control.post("/sandbox/faults", json={"delay_ms": 10_000})

    def ask(openid: str) -> dict[str, Any]:
        with SimDriver(sim.base_url) as driver:
            return driver.send(APPID, openid, text="余额")

    with ThreadPoolExecutor(40) as pool:
        asked = [pool.submit(ask, openid) for openid in askers]
        time.sleep(1.0)  # the 40 requests are in the receiver, their back-end calls held
        welcome = sim.send(APPID, newcomer, event="subscribe")
        answers = [f.result() for f in asked]
    # in time: the simulator (WeChat) waits 5 s for the first delivery
    assert welcome["status"] == "replied" and welcome["deliveries"] == 1, welcome
    assert str(welcome["content"]).startswith(WELCOME), welcome
    proc.stop()
    lines = [x for x in log_path.read_text().splitlines() if "route=event:subscribe" in x]
    assert len(lines) == 1 and float(lines[0].rsplit("ms=", 1)[1]) < 5000, lines
    # every balance request was answered in time (the busy text or success, then late)
    assert all(a["status"] in ("replied", "success") for a in answers), answers
