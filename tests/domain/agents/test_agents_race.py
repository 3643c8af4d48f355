"""Agents under concurrency: `bankwx serve --workers 2`, 50 followers each asking 人工 twice at
once, then two agents taking, replying and closing in loops while the receivers' own assigner
races them. One session per follower, each assigned exactly once, no agent above its maximum at
any moment (sampled from the store)."""

from __future__ import annotations

import collections
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from bxprocs import Proc, SimOptions, start_receiver
from bxtest import APPID, Bankwx, add_account_args

from bankwx_cli.sim.driver import SimDriver

FOLLOWERS = 50
MAX_SESSIONS = 3


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=FOLLOWERS)


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def _cli(*args: str, operator: str) -> subprocess.CompletedProcess[str]:
    """bankwx as its own process (the agents are separate people at separate terminals)."""
    env = {**os.environ, "BANKWX_OPERATOR": operator}
    return subprocess.run(
        [sys.executable, "-m", "bankwx_cli", *args], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def test_fifty_followers_two_agents_and_the_assigner(
    store_ready: Bankwx, sim: SimDriver, receivers: list[Proc], db_path: Path
) -> None:
    bankwx = store_ready
    ok(bankwx(*add_account_args()))
    ok(bankwx("agent", "group", "add", "retail", "--queue-timeout", "3600"))
    for name in ("zhang", "li"):
        ok(bankwx("operator", "add", name, "--role", "agent"))
        ok(bankwx("agent", "add", name, "--groups", "retail", "--max-sessions", str(MAX_SESSIONS),
                  "--kf-account", f"{name}@bankwx"))  # fmt: skip
        ok(bankwx("agent", "status", "busy", "--agent", name))  # present: the queue forms
    ok(bankwx("keyword", "add", "人工", "--match", "exact", "--action", "talk_to_agent", "--arg",
              "retail"))  # fmt: skip
    start_receiver(bankwx, receivers, "--workers", "2")
    followers = [f["openid"] for f in sim.followers(APPID)][:FOLLOWERS]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda o: sim.send(APPID, o, text="人工"), followers * 2))
    assert all(a["status"] in ("replied", "success") for a in answers), answers[:3]
    queued = json.loads(ok(bankwx("agent", "queue", "--format", "json")).stdout)
    assert sorted(q["openid"] for q in queued) == sorted(followers)  # once each

    over: list[tuple[int, int]] = []
    done = threading.Event()

    def sample() -> None:  # the store, read apart from bankwx
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        while not done.is_set():
            rows = conn.execute(
                "SELECT agent_id, count(*) FROM agent_sessions WHERE state = 'open' "
                "GROUP BY agent_id"
            ).fetchall()
            over.extend((agent, n) for agent, n in rows if n > MAX_SESSIONS)
            time.sleep(0.02)
        conn.close()

    served: dict[str, list[int]] = collections.defaultdict(list)

    def work(agent: str) -> None:
        _cli("agent", "status", "online", operator=agent)
        deadline = time.monotonic() + 300  # each CLI call is a process: slow under load
        while time.monotonic() < deadline:
            mine = json.loads(_cli("agent", "sessions", "--state", "open", "--format", "json",
                                   operator=agent).stdout or "[]")  # fmt: skip
            if not mine:
                taken = _cli("agent", "take", "--format", "json", operator=agent)
                if taken.returncode != 0:
                    if "nobody is waiting" in taken.stderr:
                        return
                    continue
                mine = [json.loads(taken.stdout)]
            for session in mine:
                served[agent].append(session["id"])
                _cli("agent", "reply", str(session["id"]), "您好", operator=agent)
                _cli("agent", "close", str(session["id"]), operator=agent)

    sampler = threading.Thread(target=sample)
    sampler.start()
    workers = [threading.Thread(target=work, args=(a,)) for a in ("zhang", "li")]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(330)
    done.set()
    sampler.join()

    assert over == []
    sessions = json.loads(ok(bankwx("agent", "sessions", "--all", "--format", "json")).stdout)
    assert len(sessions) == FOLLOWERS
    assert sorted(s["openid"] for s in sessions) == sorted(followers)
    assert all(s["state"] == "closed" and s["agent"] in ("zhang", "li") for s in sessions)
    assigned = collections.Counter()
    for action in ("agent.take", "agent.assign"):
        entries = json.loads(ok(bankwx("audit", "--action", action, "--format", "json")).stdout)
        assigned.update(e["params"]["session"] for e in entries)
    assert sorted(assigned) == sorted(s["id"] for s in sessions)
    assert set(assigned.values()) == {1}  # each session assigned exactly once
