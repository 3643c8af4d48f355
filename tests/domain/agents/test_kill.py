"""Agents through crashes: a receiver killed with SIGKILL after ``talk_to_agent`` committed the
follower's session but before the message's outcome was written (the test-only pause setting
``test.agent_queued_pause``, known only with BANKWX_TEST_ACTIONS=1): WeChat's later delivery of
the same message, handled by a second receiver, finds the one session and answers the position.

The receivers sit behind a forwarding front (as behind a load balancer): WeChat's retries go to
the one callback URL, which forwards to whichever receiver is up."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bxprocs import Proc, ServerThread, SimOptions, serve
from bxtest import APPID, Bankwx, add_account_args

from bankwx_cli.sim.driver import SimDriver

TEST_ACTIONS = {"BANKWX_TEST_ACTIONS": "1"}


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=6)


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def js(result: Any) -> Any:
    return json.loads(ok(result).stdout)


class Front:
    """An ASGI app forwarding every request to ``target``; when the receiver dies mid-request
    it never answers (WeChat's delivery times out and is made again)."""

    def __init__(self) -> None:
        self.target = ""
        self.forwarded: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        target = self.target
        self.forwarded.append(target)
        url = f"{target}{scope['path']}?{scope['query_string'].decode()}"
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k != b"host"}
        try:
            async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
                answer = await client.request(scope["method"], url, content=body, headers=headers)
        except httpx.HTTPError:
            await asyncio.sleep(8)  # longer than WeChat waits: it delivers again
            return
        kind = answer.headers.get("content-type", "text/plain").encode()
        start = {"type": "http.response.start", "status": answer.status_code,
                 "headers": [(b"content-type", kind)]}  # fmt: skip
        await send(start)
        await send({"type": "http.response.body", "body": answer.content})


@pytest.fixture
def front() -> Iterator[tuple[Front, str]]:
    app = Front()
    with ServerThread(app) as server:
        yield app, server.url


def _wait(condition: Any, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _rows(db_path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def test_a_receiver_killed_after_queueing_leaves_one_session(
    store_ready: Bankwx,
    sim: SimDriver,
    receivers: list[Proc],
    front: tuple[Front, str],
    db_path: Path,
) -> None:
    bankwx = store_ready
    forwarder, front_url = front
    ok(bankwx(*add_account_args()))
    ok(bankwx("operator", "add", "zhang", "--role", "agent"))
    ok(bankwx("agent", "group", "add", "retail"))
    ok(bankwx("agent", "add", "zhang", "--groups", "retail"))
    ok(bankwx("agent", "status", "busy", "--agent", "zhang"))  # present; assigned nobody
    ok(bankwx("account", "set", "main", "default_group", "retail"))
    ok(bankwx("keyword", "add", "人工", "--match", "exact", "--action", "talk_to_agent"))
    ok(bankwx("account", "set", "main", "test.agent_queued_pause", "60", env=TEST_ACTIONS))
    # a deadline of 2 s: a claim is taken over once it is 4 s old (the engine's rule), so
    # WeChat's second delivery, 5 s after the first, is handled afresh
    first = serve("--deadline", "2", env=TEST_ACTIONS)
    second = serve("--deadline", "2", env=TEST_ACTIONS)
    receivers += [first, second]
    forwarder.target = first.url
    ok(bankwx("sim", "register", "main", "--callback", f"{front_url}/wx/main"))
    openid = sim.pick_openid(APPID)

    answered: list[dict[str, Any]] = []
    asking = threading.Thread(target=lambda: answered.append(sim.send(APPID, openid, text="人工")))
    asking.start()
    sessions = "SELECT id, state FROM agent_sessions"
    assert _wait(lambda: len(_rows(db_path, sessions)) == 1, 1.5)
    first.kill()  # committed; the message's outcome not yet written (it waits in the pause)
    assert _rows(db_path, "SELECT state, outcome FROM messages") == [("processing", "")]
    forwarder.target = second.url
    ok(bankwx("account", "unset", "main", "test.agent_queued_pause", env=TEST_ACTIONS))
    asking.join(60)
    assert not asking.is_alive()

    (got,) = answered
    assert got["status"] == "replied", got
    assert str(got["content"]).startswith("您前面还有 0 位客户"), got
    assert got["deliveries"] == 2
    assert forwarder.forwarded == [first.url, second.url]
    (session,) = js(bankwx("agent", "sessions", "--all", "--format", "json"))
    assert (session["openid"], session["state"], session["agent"]) == (openid, "waiting", None)
    (waiting,) = js(bankwx("agent", "queue", "--format", "json"))
    assert (waiting["session"], waiting["position"]) == (session["id"], 1)
    # the message is logged once, its outcome written by the second receiver
    logged = js(bankwx("messages", "list", "--openid", openid, "--format", "json"))
    inbound = [m for m in logged if m["direction"] == "in"]
    assert [(m["route"], m["deliveries"]) for m in inbound] == [("agent", 2)], logged
