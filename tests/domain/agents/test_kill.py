"""Agents through crashes: a receiver killed with SIGKILL after ``talk_to_agent`` committed the
follower's session but before the message's outcome was written (the test-only pause setting
``test.agent_queued_pause``, known only with BANKWX_TEST_ACTIONS=1): WeChat's later delivery of
the same message, handled by a second receiver, finds the one session and answers the position.

The receivers sit behind a forwarding front (as behind a load balancer): WeChat's retries go to
the one callback URL, which forwards to whichever receiver is up."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bxprocs import Proc, ServerThread, SimOptions, serve
from bxtest import APPID, Bankwx, add_account_args

from bankwx_cli.sim.driver import SimDriver

pytestmark = pytest.mark.serial  # kills at moments in time: run alone (make test)

TEST_ACTIONS = {"BANKWX_TEST_ACTIONS": "1"}


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=12)


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
            await asyncio.sleep(12)  # longer than WeChat waits: it delivers again
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
    # WeChat's own timing (an answer within 5 s, else the next delivery) and the default
    # deadline: the second delivery comes while the claim is not yet stale (6 s, the engine's
    # rule); it waits for the first, sees the claim go stale, takes the message over
    first = serve(env=TEST_ACTIONS)
    second = serve(env=TEST_ACTIONS)
    receivers += [first, second]
    forwarder.target = first.url
    ok(bankwx("sim", "register", "main", "--callback", f"{front_url}/wx/main"))
    openid = sim.pick_openid(APPID)

    answered: list[dict[str, Any]] = []
    asking = threading.Thread(target=lambda: answered.append(sim.send(APPID, openid, text="人工")))
    asking.start()
    sessions = "SELECT id, state FROM agent_sessions"
    assert _wait(lambda: len(_rows(db_path, sessions)) == 1, 3.0)
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


# --- agent replies through an outbox dispatcher killed at seeded points ---------------------

FOLLOWERS = 10
REPLIES = 4  # per follower: a retried unit still fits the window's 5 messages


def _units(bankwx: Bankwx, **filters: str) -> list[dict[str, Any]]:
    args = ["outbox", "list", "--format", "json"]
    for key, value in filters.items():
        args += [f"--{key}", value]
    return list(js(bankwx(*args)))


def _outbox_run() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bankwx_cli", "outbox", "run"],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def test_agent_replies_at_most_once_through_sigkills(
    store_ready: Bankwx, sim: SimDriver, receivers: list[Proc]
) -> None:
    bankwx = store_ready
    ok(bankwx(*add_account_args()))
    ok(bankwx("operator", "add", "zhang", "--role", "agent"))
    ok(bankwx("agent", "group", "add", "retail"))
    ok(bankwx("agent", "add", "zhang", "--groups", "retail", "--max-sessions", "10",
              "--kf-account", "zhang@bankwx", "--nickname", "小张"))  # fmt: skip
    ok(bankwx("account", "set", "main", "default_group", "retail"))
    ok(bankwx("keyword", "add", "人工", "--match", "exact", "--action", "talk_to_agent"))
    ok(bankwx("agent", "status", "busy", "--agent", "zhang"))
    receiver = serve()
    receivers.append(receiver)
    ok(bankwx("sim", "register", "main", "--callback", f"{receiver.url}/wx/main"))
    ok(bankwx("outbox", "pause", "--lane", "agent"))
    zhang = {"BANKWX_OPERATOR": "zhang"}
    texts: dict[str, str] = {}  # reply text -> openid
    for openid in [f["openid"] for f in sim.followers(APPID)][:FOLLOWERS]:
        sim.send(APPID, openid, text="人工")
        session = js(bankwx("agent", "take", openid, "--format", "json", env=zhang))["id"]
        for i in range(REPLIES):
            text = f"会话{session}第{i + 1}条回复"
            ok(bankwx("agent", "reply", str(session), text, env=zhang))
            texts[text] = openid
    receiver.stop()  # its dispatcher would send them too
    receivers.remove(receiver)
    held = _units(bankwx)
    assert len(held) == FOLLOWERS * REPLIES
    assert {(u["state"], u["lane"]) for u in held} == {("pending", "agent")}
    assert sim.delivered(kind="custom") == []  # the lane is paused: nothing left

    ok(bankwx("outbox", "resume", "--lane", "agent"))
    sim.set_faults(latency_ms=800)  # each send takes a while: kills land mid-send
    rng = random.Random(20261202)  # seeded kill points
    kills = 0
    for _ in range(15):
        proc = _outbox_run()
        time.sleep(rng.uniform(0.8, 1.8))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.wait()
        if not _units(bankwx, state="pending") and not _units(bankwx, state="sending"):
            break
    final = bankwx("outbox", "run")
    assert final.exit_code in (0, 1), final.output  # 1: units left unknown
    assert kills >= 2
    time.sleep(0.5)  # sends in flight when a dispatcher died have landed
    sim.set_faults(latency_ms=0)

    delivered = sim.delivered(kind="custom")
    counts = Counter(str(d["content"]) for d in delivered)
    assert set(counts) <= set(texts) and max(counts.values()) == 1  # at most once each
    assert {d["kf_account"] for d in delivered} == {"zhang@bankwx"}
    assert all(d["openid"] == texts[str(d["content"])] for d in delivered)
    units = _units(bankwx)
    states = Counter(u["state"] for u in units)
    assert set(states) <= {"sent", "unknown"}, states
    assert states["unknown"] >= 1, states  # a unit caught mid-send
    assert states["sent"] == sum(1 for u in units if u["state"] == "sent")
    assert len(counts) >= states["sent"]
    # unknown units are shown to the agent, and sent again only by outbox retry
    sessions = js(bankwx("agent", "sessions", "--format", "json", env=zhang))
    assert sum(s["unknown_units"] for s in sessions) == states["unknown"]
    again = bankwx("outbox", "run")
    assert again.exit_code == 0 and len(sim.delivered(kind="custom")) == len(delivered)
    unknown = [u for u in units if u["state"] == "unknown"]
    # the operator checks /sim/delivered and retries a unit that did not arrive, if any
    missing = [u for u in unknown if u["payload"]["text"]["content"] not in counts] or unknown
    unit = missing[0]
    text = unit["payload"]["text"]["content"]
    before = counts[text]
    ok(bankwx("outbox", "retry", str(unit["id"])))
    assert bankwx("outbox", "retry", str(unit["id"])).exit_code == 1  # pending now
    ok(bankwx("outbox", "run"))
    after = Counter(str(d["content"]) for d in sim.delivered(kind="custom"))
    assert after[text] == before + 1  # sent once by the retry
    (retried,) = [u for u in _units(bankwx) if u["id"] == unit["id"]]
    assert retried["state"] == "sent"
