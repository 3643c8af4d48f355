"""`bankwx serve --workers 2` hands every global option to its workers, the test clock too.

Real processes: the simulator, the receiver and its workers on loopback ports.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from bxprocs import Proc, start
from bxtest import APPID, Bankwx, add_account_args

from bankwx_cli.sim.driver import SimDriver

TEST_ACTIONS = {"BANKWX_TEST_ACTIONS": "1"}


class Receiver(Proc):
    """`bankwx GLOBAL... serve --port 0 ARGS...` with its stderr kept in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        proc = start(args, environ=env, health="/healthz", log=log)
        super().__init__(proc.popen, proc.url, proc.log, proc.stderr_file)


def _environment(**extra: str) -> dict[str, str]:
    """The test's environment without BANKWX_DEBUG (conftest sets it): --debug must do it."""
    env = {k: v for k, v in os.environ.items() if k != "BANKWX_DEBUG"}
    env.update(extra)
    return env


def _lease(db: Path) -> tuple[str | None, float | None]:
    conn = sqlite3.connect(db, timeout=5)
    try:
        row = conn.execute("SELECT lease_holder, lease_until FROM tokens").fetchone()
    except sqlite3.OperationalError:
        return None, None  # busy, or no table yet
    finally:
        conn.close()
    return (row[0], row[1]) if row else (None, None)


def test_workers_use_token_lease_and_debug(
    store_ready: Bankwx,
    sim: SimDriver,
    receivers: list[Receiver],
    db_path: Path,
    tmp_path: Path,
) -> None:
    assert store_ready(*add_account_args()).exit_code == 0
    added = store_ready(
        *("keyword", "add", "慢", "--match", "exact", "--action", "sleep", "--arg", "1"),
        env=TEST_ACTIONS,
    )
    assert added.exit_code == 0, added.output
    args = ["--token-lease", "123", "--debug", "serve", "--port", "0", "--workers", "2"]
    receiver = Receiver(
        [*args, "--deadline", "0.5"], _environment(**TEST_ACTIONS), tmp_path / "serve.log"
    )
    receivers.append(receiver)
    registered = store_ready("sim", "register", "main", "--callback", f"{receiver.url}/wx/main")
    assert registered.exit_code == 0, registered.output
    sim.set_faults(latency_ms=1500)  # the token fetch takes long enough to see its lease
    assert sim.send(APPID, sim.pick_openid(APPID), text="慢")["status"] == "success"
    # the late answer goes out through the outbox, sent by a worker's dispatcher, whose
    # client first takes the token's refresh lease for --token-lease seconds
    leases: list[tuple[str, float]] = []
    deadline = time.time() + 20
    while time.time() < deadline and not sim.delivered(kind="custom"):
        holder, until = _lease(db_path)
        if holder is not None and until is not None:
            leases.append((holder, until - time.time()))
        time.sleep(0.02)
    assert len(sim.delivered(kind="custom")) == 1
    assert leases, "no refresh lease seen during the token fetch"
    holder, left = leases[0]
    assert 110 < left <= 123, leases  # the default lease is 15 s
    assert f":{receiver.popen.pid}:" not in holder  # a worker's, not the parent's
    log = receiver.stop()
    workers = {
        line.split("[worker ", 1)[1].split("]", 1)[0]
        for line in log.splitlines()
        if " DEBUG bankwx_cli.server [worker " in line and "settings from the environment:" in line
    }
    assert str(receiver.popen.pid) not in workers and len(workers) == 2, log  # in each worker
    assert "token_lease_s=123.0" in log and "debug=True" in log


def test_workers_keep_the_test_clock_offset(
    store_ready: Bankwx, sim: SimDriver, receivers: list[Receiver], tmp_path: Path
) -> None:
    """With the clock moved two hours, a callback stamped with today's time is a replay (403)
    and one stamped two hours ahead is answered, in whichever worker takes it."""
    assert store_ready(*add_account_args()).exit_code == 0
    assert (
        store_ready("keyword", "add", "hi", "--match", "exact", "--reply-text", "你好").exit_code
        == 0
    )
    env = _environment(**TEST_ACTIONS, BANKWX_TEST_CLOCK_OFFSET="7200")
    receiver = Receiver(["serve", "--port", "0", "--workers", "2"], env, tmp_path / "serve.log")
    receivers.append(receiver)
    registered = store_ready("sim", "register", "main", "--callback", f"{receiver.url}/wx/main")
    assert registered.exit_code == 0, registered.output
    openid = sim.pick_openid(APPID)
    refused: dict[str, Any] = sim.send(APPID, openid, text="hi")
    assert refused["status"] == "failed", refused
    sim.advance_clock(7200)
    for _ in range(4):  # several callbacks: both workers are likely to answer some
        answered = sim.send(APPID, openid, text="hi")
        assert answered["status"] == "replied" and answered["content"] == "你好", answered
