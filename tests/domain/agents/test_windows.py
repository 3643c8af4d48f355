"""The customer-service window shared by every path that writes to a follower: a late answer
(the receiver's 5-second guarantee) and an agent's replies take from one allowance; a window
WeChat says is closed (45015) closes bankwx's too."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from bxprocs import Proc, SimOptions, serve
from bxtest import APPID, Bankwx, add_account_args

from bankwx_cli.sim.driver import SimDriver

TEST_ACTIONS = {"BANKWX_TEST_ACTIONS": "1"}
ZHANG = {"BANKWX_OPERATOR": "zhang"}


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=6)


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def js(result: Any) -> Any:
    return json.loads(ok(result).stdout)


def _wait(condition: Any, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def desk(store_ready: Bankwx, sim: SimDriver, receivers: list[Proc]) -> Bankwx:
    """Account main served by a receiver with a 0.5 s deadline; agent zhang (kf account
    zhang@bankwx) busy in group retail; 人工 queues; 慢N answers after N seconds."""
    bankwx = store_ready
    ok(bankwx(*add_account_args()))
    ok(bankwx("operator", "add", "zhang", "--role", "agent"))
    ok(bankwx("agent", "group", "add", "retail"))
    ok(bankwx("agent", "add", "zhang", "--groups", "retail", "--kf-account", "zhang@bankwx"))
    ok(bankwx("agent", "status", "busy", "--agent", "zhang"))
    ok(bankwx("account", "set", "main", "default_group", "retail"))
    ok(bankwx("keyword", "add", "人工", "--match", "exact", "--action", "talk_to_agent"))
    for seconds in ("2", "6"):
        ok(bankwx("keyword", "add", f"慢{seconds}", "--match", "exact", "--action", "sleep",
                  "--arg", seconds, env=TEST_ACTIONS))  # fmt: skip
    proc = serve("--deadline", "0.5", env=TEST_ACTIONS)
    receivers.append(proc)
    ok(bankwx("sim", "register", "main", "--callback", f"{proc.url}/wx/main"))
    return bankwx


def _outcomes(bankwx: Bankwx, openid: str) -> list[str]:
    log = js(bankwx("messages", "list", "--openid", openid, "--format", "json"))
    return [m["outcome"] for m in log if m["direction"] == "in"]


def _reply(bankwx: Bankwx, session: int, text: str) -> Any:
    return bankwx("agent", "reply", str(session), text, "--format", "json", env=ZHANG)


def test_a_late_answer_takes_from_the_agents_allowance(desk: Bankwx, sim: SimDriver) -> None:
    """The follower asks something slow, then 人工: the late answer lands while the agent
    serves them, and takes one of the window's five messages."""
    ok(desk("outbox", "pause", "--lane", "agent"))
    ok(desk("outbox", "pause", "--lane", "reply"))
    openid = sim.pick_openid(APPID)
    assert sim.send(APPID, openid, text="慢2")["status"] == "success"  # answered late
    sim.send(APPID, openid, text="人工")
    session = js(desk("agent", "take", "--format", "json", env=ZHANG))["id"]
    first = js(_reply(desk, session, "您好"))
    assert first["messages_left"] == 4
    assert _wait(lambda: "late_enqueued" in _outcomes(desk, openid))
    (late,) = js(desk("outbox", "list", "--lane", "reply", "--format", "json"))
    assert late["kind"] == "custom"
    shown = js(desk("agent", "sessions", "--format", "json", env=ZHANG))[0]
    assert shown["messages_left"] == 3  # the agent's reply and the late answer
    for text in ("第二条", "第三条", "第四条"):
        ok(_reply(desk, session, text))
    spent = _reply(desk, session, "第五条")
    assert spent.exit_code == 1 and "window is spent" in spent.output
    ok(desk("outbox", "resume"))
    ok(desk("outbox", "run"))
    delivered = sim.delivered(kind="custom", openid=openid)
    assert len(delivered) == 5
    assert not [e for e in sim.log(kind="api") if e.get("errcode") in (45015, 45047)]


def test_agent_replies_leave_no_allowance_for_a_late_answer(desk: Bankwx, sim: SimDriver) -> None:
    """The follower asks something slow, then 人工; the agent spends the window before the
    slow answer is ready: it is logged late_no_allowance, and nothing is enqueued."""
    ok(desk("outbox", "pause", "--lane", "agent"))
    openid = sim.pick_openid(APPID)
    assert sim.send(APPID, openid, text="慢6")["status"] == "success"
    sim.send(APPID, openid, text="人工")
    session = js(desk("agent", "take", "--format", "json", env=ZHANG))["id"]
    for i in range(5):
        ok(_reply(desk, session, f"第{i + 1}条"))
    assert _wait(lambda: "late_no_allowance" in _outcomes(desk, openid), 20)
    units = js(desk("outbox", "list", "--format", "json"))
    assert [u["lane"] for u in units] == ["agent"] * 5  # no late unit
    ok(desk("outbox", "resume", "--lane", "agent"))
    ok(desk("outbox", "run"))
    assert len(sim.delivered(kind="custom", openid=openid)) == 5
    assert not [e for e in sim.log(kind="api") if e.get("errcode") in (45015, 45047)]


def test_wechats_45015_closes_the_window(desk: Bankwx, sim: SimDriver) -> None:
    """WeChat's clock says the window closed, bankwx's does not: the reply WeChat refuses
    closes bankwx's window, and the next reply is refused before anything is enqueued."""
    openid = sim.pick_openid(APPID)
    sim.send(APPID, openid, text="人工")
    session = js(desk("agent", "take", "--format", "json", env=ZHANG))["id"]
    ok(desk("outbox", "pause", "--lane", "agent"))
    ok(_reply(desk, session, "您好"))
    sim.advance_clock(48 * 3600 + 60)  # WeChat only
    ok(desk("outbox", "resume", "--lane", "agent"))
    run = desk("outbox", "run")  # unless the receiver's own dispatcher sent it first
    if run.exit_code == 0:
        assert _wait(lambda: js(desk("outbox", "list", "--format", "json"))[0]["state"] == "failed")
    else:
        assert run.exit_code == 3 and "45015" in run.output, run.output
    (unit,) = js(desk("outbox", "list", "--format", "json"))
    assert unit["state"] == "failed"
    assert 45015 in [e.get("errcode") for e in sim.log(kind="api")]  # (42001: the token aged)
    refused = _reply(desk, session, "还在吗")
    assert refused.exit_code == 1 and "window is closed" in refused.output
    assert len(js(desk("outbox", "list", "--format", "json"))) == 1
    assert sim.delivered(kind="custom") == []
