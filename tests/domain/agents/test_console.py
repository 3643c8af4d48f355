"""The agent console (`bankwx agent console`), headless through Textual's pilot, against a real
store, a `bankwx serve` receiver and the simulator: a session selected, a reply sent and shown,
the follower's next message shown within 2 s, the session closed; WeChat's typing indicator sent
once while the agent types and never more than 30 s after the follower's last message (the
simulator's call log); and Textual loaded by no other command."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bxprocs import Proc, SimOptions, serve
from bxtest import APPID, Bankwx, add_account_args

from bankwx_cli.clock import OffsetClock
from bankwx_cli.sim.driver import SimDriver

TYPING = "/cgi-bin/message/custom/typing"


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=6)


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def as_(bankwx: Bankwx, operator: str, *args: str) -> Any:
    return bankwx(*args, env={"BANKWX_OPERATOR": operator})


@pytest.fixture
def desk(store_ready: Bankwx, sim: SimDriver, receivers: list[Proc]) -> Bankwx:
    """Account main served by a receiver; agent zhang (kf account zhang@bankwx, online) in
    group retail; 人工 queues."""
    bankwx = store_ready
    ok(bankwx(*add_account_args()))
    ok(bankwx("operator", "add", "zhang", "--role", "agent"))
    ok(bankwx("account", "set", "main", "wechat_id", "bankwx"))
    ok(bankwx("agent", "group", "add", "retail"))
    ok(bankwx("agent", "add", "zhang", "--groups", "retail", "--kf-account", "zhang@bankwx"))
    ok(bankwx("account", "set", "main", "default_group", "retail"))
    ok(bankwx("keyword", "add", "人工", "--match", "exact", "--action", "talk_to_agent"))
    ok(as_(bankwx, "zhang", "agent", "status", "online"))
    proc = serve()
    receivers.append(proc)
    ok(bankwx("sim", "register", "main", "--callback", f"{proc.url}/wx/main"))
    return bankwx


async def until(pilot: Any, check: Callable[[], bool], timeout: float, what: str) -> float:
    """Let the console run until check() holds; the seconds it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            shown = {
                name: str(pilot.app.query_one(f"#{name}").render())
                for name in ("status", "window", "message")
            }
            lines = list(pilot.app.query_one("#conversation").lines)
            raise AssertionError(
                f"the console did not show {what} within {timeout} s: {shown}, {lines}"
            )
        await pilot.pause(0.05)
    return time.monotonic() - started


def typing_calls(sim: SimDriver) -> list[dict[str, Any]]:
    return sim.log(kind="api", path=TYPING)


def test_the_console_serves_a_session(
    desk: Bankwx, sim: SimDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textual.widgets import DataTable, Input, Log, Static

    from bankwx_cli.commands.agent_console import AgentConsole
    from bankwx_cli.context import AppContext
    from bankwx_cli.settings import from_environment

    first, openid = [f["openid"] for f in sim.followers(APPID)][:2]
    assert "您前面还有 0 位客户" in str(sim.send(APPID, first, text="人工")["content"])
    assert "您前面还有" in str(sim.send(APPID, openid, text="人工")["content"])
    monkeypatch.setenv("BANKWX_OPERATOR", "zhang")
    app = AppContext(from_environment())
    console = AgentConsole(app, "main")

    def conversation() -> list[str]:
        return list(console.query_one("#conversation", Log).lines)

    def message() -> str:
        return str(console.query_one("#message", Static).render())

    def status() -> str:
        return str(console.query_one("#status", Static).render())

    def window() -> str:
        return str(console.query_one("#window", Static).render())

    def sessions() -> list[dict[str, Any]]:
        found = as_(desk, "zhang", "agent", "sessions", "--format", "json")
        return list(json.loads(ok(found).stdout))

    async def scenario() -> None:
        async with console.run_test(size=(140, 40)) as pilot:
            table = console.query_one("#sessions", DataTable)
            # the receiver's (or the console's) assignment gives zhang the follower
            await until(pilot, lambda: table.row_count == 2, 10, "the assigned sessions")
            mine = {s["openid"]: s["id"] for s in sessions()}
            assert console.selected == mine[first]  # the first open one, until one is picked
            table.focus()
            await pilot.press("down", "enter")  # pick the second follower's
            session_id = mine[openid]
            assert console.selected == session_id
            await until(pilot, lambda: conversation() and "人工" in conversation()[-1], 3,
                        "the follower's first message")  # fmt: skip
            assert len(conversation()) == 1  # that follower's conversation alone
            assert f"Session {session_id}" in window() and "5 message(s) left" in window()
            assert console.query_one("#reply", Input).has_focus

            # typing: one Typing while the agent types, however many keys (the pilot types
            # letters and CJK; full-width punctuation it does not press)
            await pilot.press(*"您好请问")
            await until(pilot, lambda: console.typist.sends == 1, 5, "the typing indicator")
            await pilot.press(*"有什么可以帮您")
            await pilot.pause(0.3)
            calls = typing_calls(sim)
            assert [(c["body"]["touser"], c["body"]["command"], c["errcode"]) for c in calls] == [
                (openid, "Typing", 0)
            ]

            # the reply: sent through the outbox at once, shown in the conversation
            await pilot.press("enter")
            await until(pilot, lambda: message().startswith("Sent (unit"), 10, "the reply sent")
            await until(pilot, lambda: any("→ zhang: 您好请问有什么可以帮您" in line
                                           for line in conversation()), 3, "the reply")  # fmt: skip
            assert console.query_one("#reply", Input).value == ""

            def delivered() -> list[tuple[str, str]]:
                found = sim.delivered(appid=APPID, openid=openid, kind="custom")
                return [(d["content"], d["kf_account"]) for d in found]

            await until(pilot, lambda: bool(delivered()), 5, "the reply delivered")
            assert delivered() == [("您好请问有什么可以帮您", "zhang@bankwx")]
            await until(pilot, lambda: "4 message(s) left" in window(), 3, "the allowance")

            # the follower's next message, through the receiver, on screen within 2 s
            assert sim.send(APPID, openid, text="我想查询信用卡账单")["status"] == "success"
            took = await until(pilot, lambda: any("← follower: 我想查询信用卡账单" in line
                                                  for line in conversation()), 2.0,
                               "the follower's message")  # fmt: skip
            assert took <= 2.0

            # after a new message (and a reply that ended the indicator), typing goes again
            await pilot.press(*"好的")
            await until(pilot, lambda: console.typist.sends == 2, 5, "the second indicator")
            await pilot.press(*"请稍等")
            await pilot.pause(0.3)
            assert len(typing_calls(sim)) == 2
            console.query_one("#reply", Input).value = ""

            # 31 s later, by bankwx's clock and WeChat's, no typing indicator at all
            seq = sim.log(limit=1)[-1]["seq"]
            sim.advance_clock(31)
            app.clock = OffsetClock(31)
            await pilot.press(*"您的账单")
            await pilot.pause(0.5)
            assert sim.log(kind="api", path=TYPING, since=seq) == []
            assert console.typist.sends == 2 and console.typist.failures == 0
            console.query_one("#reply", Input).value = ""
            # were it asked anyway, WeChat refuses (45080): counted, never an error on screen
            session = console.session
            assert session is not None
            assert not await asyncio.to_thread(console.typist.send, app, session)
            assert [c["errcode"] for c in sim.log(kind="api", path=TYPING, since=seq)] == [45080]
            await until(pilot, lambda: "typing failures 1" in status(), 3, "the failure count")

            # close it (F4)
            await pilot.press("f4")
            await until(pilot, lambda: "closed (agent)" in window(), 5, "the closed session")
            closed = {s["id"]: s for s in sessions()}[session_id]
            assert (closed["state"], closed["close_reason"]) == ("closed", "agent")

    try:
        asyncio.run(scenario())
    finally:
        app.close()


def test_take_transfer_and_status_keys(
    desk: Bankwx, sim: SimDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Busy, zhang is assigned nobody: F2 takes from the queue; /transfer hands the session
    back to the group; F5 moves to the next status (away)."""
    from textual.widgets import DataTable, Input

    from bankwx_cli.commands.agent_console import AgentConsole
    from bankwx_cli.context import AppContext
    from bankwx_cli.settings import from_environment

    ok(as_(desk, "zhang", "agent", "status", "busy"))
    openid = sim.pick_openid(APPID)
    assert "您前面还有 0 位客户" in str(sim.send(APPID, openid, text="人工")["content"])
    monkeypatch.setenv("BANKWX_OPERATOR", "zhang")
    app = AppContext(from_environment())
    console = AgentConsole(app, "main")

    def state() -> tuple[str, str | None]:
        found = json.loads(
            ok(as_(desk, "alice", "agent", "sessions", "--all", "--format", "json")).stdout
        )
        return found[0]["state"], found[0]["agent"]

    async def scenario() -> None:
        async with console.run_test(size=(140, 40)) as pilot:
            queue = console.query_one("#queue", DataTable)
            sessions = console.query_one("#sessions", DataTable)
            await until(pilot, lambda: queue.row_count == 1, 5, "the waiting follower")
            await pilot.pause(1.5)
            assert sessions.row_count == 0  # busy: nobody assigned
            await pilot.press("f2")
            await until(pilot, lambda: sessions.row_count == 1, 5, "the session taken")
            assert state() == ("open", "zhang")
            assert console.selected is not None
            await until(pilot, lambda: queue.row_count == 0, 3, "the empty queue")

            await pilot.press("f3")  # the reply line asks for the target
            reply = console.query_one("#reply", Input)
            assert reply.value == "/transfer " and reply.has_focus
            await pilot.press(*"retail", "enter")
            await until(pilot, lambda: queue.row_count == 1, 5, "the follower back in the queue")
            assert state() == ("waiting", None)

            await pilot.press("f5")  # busy -> away
            await until(pilot, lambda: console.me is not None and console.me.status == "away",
                        5, "the status")  # fmt: skip
            agents = json.loads(ok(as_(desk, "alice", "agent", "list", "--format", "json")).stdout)
            assert agents[0]["status"] == "away"
            await pilot.press("f2")  # away: refused, one line
            await until(pilot, lambda: "set your status first" in message(), 5, "the refusal")

    def message() -> str:
        from textual.widgets import Static

        return str(console.query_one("#message", Static).render())

    try:
        asyncio.run(scenario())
    finally:
        app.close()


def test_typing_is_due_once_per_follower_message_within_30_s() -> None:
    from bankwx_cli.domain.agent_typing import MARGIN_S, TYPING_WITHIN_S, due

    heard = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    limit = TYPING_WITHIN_S - MARGIN_S
    assert due(heard, None, heard + timedelta(seconds=1))
    assert due(heard, None, heard + timedelta(seconds=limit))
    assert not due(heard, None, heard + timedelta(seconds=limit + 0.001))
    assert not due(heard, None, heard + timedelta(seconds=TYPING_WITHIN_S))
    assert not due(None, None, heard)  # never heard of: no interaction
    sent = heard + timedelta(seconds=2)
    assert not due(heard, sent, heard + timedelta(seconds=3))  # once per follower message
    assert not due(heard, sent, heard + timedelta(seconds=20))  # even once it has lapsed
    assert due(heard + timedelta(seconds=10), sent, heard + timedelta(seconds=11))  # wrote again


def test_the_console_refuses_what_it_cannot_do(desk: Bankwx) -> None:
    """Off a terminal, or for an operator who is not an agent, one line and exit 1; for a
    publisher, exit 4; with a wrong account, exit 1."""
    refused = as_(desk, "zhang", "agent", "console")
    assert refused.exit_code == 1
    assert "needs a terminal" in refused.stderr
    assert "not an agent" in desk("agent", "console").stderr  # alice, the administrator
    ok(desk("operator", "add", "pat", "--role", "publisher"))
    assert as_(desk, "pat", "agent", "console").exit_code == 4
    assert as_(desk, "zhang", "agent", "console", "--account", "nope").exit_code == 1


def _loads_textual(*args: str) -> bool:
    code = (
        "import sys\nfrom bankwx_cli.main import run\n"
        f"sys.argv = ['bankwx', *{list(args)!r}]\n"
        "try:\n    run()\nexcept SystemExit:\n    pass\n"
        "print('TEXTUAL' if any(m.split('.')[0] == 'textual' for m in sys.modules) else 'NONE')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return out.strip().endswith("TEXTUAL")


def test_only_the_console_loads_textual() -> None:
    assert not _loads_textual("--version")
    assert not _loads_textual("agent", "--help")
    assert not _loads_textual("agent", "console", "--help")
    importtime = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bankwx_cli", "--version"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "textual" not in importtime.stderr
