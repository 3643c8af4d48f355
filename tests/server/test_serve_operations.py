"""`bankwx serve` for an operations floor: its log lines (text or JSON, the same with
`--workers N`, each naming its worker), the admin listener, /readyz, and impossible ports.

Real processes: the simulator, the receiver and its workers on loopback ports.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from bxprocs import Proc, SimOptions, start
from bxtest import APPID, Bankwx, add_account_args

from bankwx_cli.sim.driver import SimDriver


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _serve(args: list[str], log: Path, **env: str) -> Proc:
    """`bankwx serve --port 0 ARGS` with its stderr in log, once /healthz answers."""
    environ = {k: v for k, v in os.environ.items() if k != "BANKWX_DEBUG"}
    environ.update(env)
    return start(["serve", "--port", "0", *args], environ=environ, health="/healthz", log=log)


def _ready_store(bankwx: Bankwx) -> None:
    assert bankwx(*add_account_args()).exit_code == 0
    added = bankwx("keyword", "add", "hi", "--match", "exact", "--reply-text", "你好")
    assert added.exit_code == 0, added.output


def _register(bankwx: Bankwx, proc: Proc) -> None:
    registered = bankwx("sim", "register", "main", "--callback", f"{proc.url}/wx/main")
    assert registered.exit_code == 0, registered.output


def test_two_workers_log_json_lines_naming_each_worker(
    store_ready: Bankwx, sim: SimDriver, receivers: list[Proc], tmp_path: Path
) -> None:
    _ready_store(store_ready)
    proc = _serve(["--workers", "2", "--log-format", "json"], tmp_path / "serve.log")
    receivers.append(proc)
    _register(store_ready, proc)
    openid = sim.pick_openid(APPID)
    for _ in range(12):  # enough that both workers answer some (the kernel spreads them)
        assert sim.send(APPID, openid, text="hi")["status"] == "replied"
    log = proc.stop()
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]  # every line JSON
    assert lines
    for line in lines:
        assert {"time", "level", "logger", "worker", "message"} <= set(line), line
        assert line["time"].endswith("Z")
    callbacks = [line for line in lines if line["message"].startswith("callback ")]
    assert len(callbacks) == 12
    assert len({line["worker"] for line in callbacks}) == 2  # from both workers
    for line in callbacks:
        assert line["account"] == "main" and line["outcome"] == "replied"
        assert line["route"] == "rule:1" and isinstance(line["ms"], float)
        assert line["request"].startswith(f"{line['worker']}-")
    assert len({line["request"] for line in callbacks}) == 12
    messages = [line["message"] for line in lines]
    assert sum(m.startswith("serve started ") for m in messages) == 1
    assert sum(m.startswith("worker started ") for m in messages) == 2
    assert sum(m.startswith("worker stopped ") for m in messages) == 2
    assert messages[-1].startswith("serve stopped ")
    parent = [line for line in lines if line["message"].startswith("serve ")]
    assert {line["worker"] for line in parent} == {proc.popen.pid}


def test_one_worker_logs_text_lines_like_two(
    store_ready: Bankwx, sim: SimDriver, receivers: list[Proc], tmp_path: Path
) -> None:
    _ready_store(store_ready)
    proc = _serve([], tmp_path / "serve.log")
    receivers.append(proc)
    _register(store_ready, proc)
    assert sim.send(APPID, sim.pick_openid(APPID), text="hi")["status"] == "replied"
    log = proc.stop()
    pid = proc.popen.pid
    lines = log.splitlines()
    head = f" INFO bankwx_cli.server [worker {pid}]: "
    assert any(head + "worker started version=" in line for line in lines), log
    assert any(head + "worker stopped callbacks=1" in line for line in lines), log
    callback = next(line for line in lines if head + "callback " in line)
    assert f"request={pid}-1 account=main " in callback and "outcome=replied" in callback
    assert lines[0].startswith("20") and lines[0].split(" ", 1)[0].endswith("Z")
    assert f"[worker {pid}]: serve stopped url=" in lines[-1]


def test_quiet_keeps_start_and_stop_but_no_callback_line(
    store_ready: Bankwx, sim: SimDriver, receivers: list[Proc], tmp_path: Path
) -> None:
    _ready_store(store_ready)
    proc = _serve(["--quiet"], tmp_path / "serve.log", BANKWX_LOG_FORMAT="json")
    receivers.append(proc)
    _register(store_ready, proc)
    assert sim.send(APPID, sim.pick_openid(APPID), text="hi")["status"] == "replied"
    messages = [json.loads(line)["message"] for line in proc.stop().splitlines()]
    assert not any(m.startswith("callback ") for m in messages)
    assert any(m.startswith("worker started ") for m in messages)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_admin_listener_takes_metrics_off_the_public_port(
    store_ready: Bankwx, sim: SimDriver, receivers: list[Proc], tmp_path: Path, workers: str
) -> None:
    _ready_store(store_ready)
    admin = _free_port()
    proc = _serve(["--workers", workers, "--admin-port", str(admin)], tmp_path / "serve.log")
    receivers.append(proc)
    _register(store_ready, proc)
    assert sim.send(APPID, sim.pick_openid(APPID), text="hi")["status"] == "replied"
    public, private = proc.url, f"http://127.0.0.1:{admin}"
    assert httpx.get(f"{public}/metrics").status_code == 404
    # a process adds its callbacks to /metrics once a second (server.TALLY_FLUSH_S); with
    # --workers 2 the scrape may be served by the other worker, which reads what was flushed
    deadline = time.monotonic() + 5
    while True:
        metrics = httpx.get(f"{private}/metrics")
        assert metrics.status_code == 200
        if 'bankwx_callbacks_total{account="main"' in metrics.text:
            break
        assert time.monotonic() < deadline, metrics.text
        time.sleep(0.2)
    for base in (public, private):
        assert httpx.get(f"{base}/healthz").text == "ok"
        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert (ready.status_code, ready.text) == (200, "ok")
    assert httpx.post(f"{private}/wx/main", content=b"x").status_code == 404  # callbacks: public


def test_metrics_stay_public_without_an_admin_port(
    store_ready: Bankwx, sim: SimDriver, receivers: list[Proc], tmp_path: Path
) -> None:
    _ready_store(store_ready)
    proc = _serve([], tmp_path / "serve.log")
    receivers.append(proc)
    assert httpx.get(f"{proc.url}/metrics").status_code == 200


def test_readyz_names_an_account_whose_token_cannot_be_fetched(
    store_ready: Bankwx, receivers: list[Proc], tmp_path: Path
) -> None:
    assert store_ready(*add_account_args()).exit_code == 0
    dead = f"http://127.0.0.1:{_free_port()}"
    proc = _serve([], tmp_path / "serve.log", BANKWX_API_BASE=dead)
    receivers.append(proc)
    answer = httpx.get(f"{proc.url}/readyz", timeout=15)
    assert answer.status_code == 503
    body: dict[str, Any] = answer.json()
    assert body["status"] == "not ready"
    [failed] = body["failed"]
    assert failed["check"] == "token" and failed["account"] == "main"
    assert f"cannot reach WeChat at {dead} (connection refused)" in failed["reason"]
    assert httpx.get(f"{proc.url}/healthz").status_code == 200  # alive, not ready
    assert "not ready check=token account=main" in proc.stop()


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "99999"],
        ["--port", "-1"],
        ["--admin-port", "65536"],
        ["--admin-port", "-1"],
        ["--workers", "0"],
        ["--deadline", "5"],
        ["--deadline", "0"],
        ["--max-body", "10"],
        ["--replay-window", "30"],
        ["--log-format", "xml"],
        ["--port", "8099", "--admin-port", "8099"],
    ],
)
def test_impossible_values_are_usage_errors(store_ready: Bankwx, args: list[str]) -> None:
    result = store_ready("serve", *args)
    assert result.exit_code == 2, result.output
    assert "Invalid value for" in result.stderr
    assert "Traceback" not in result.output


def test_readyz_names_a_store_that_takes_no_writes(
    store_ready: Bankwx, sim: SimDriver, receivers: list[Proc], tmp_path: Path, db_path: Path
) -> None:
    """Another process holds the store's write lock past the busy timeout: not ready (503),
    still alive (/healthz reads); ready again once the lock is gone."""
    _ready_store(store_ready)
    proc = _serve([], tmp_path / "serve.log")
    receivers.append(proc)
    assert httpx.get(f"{proc.url}/readyz", timeout=10).status_code == 200
    holder = sqlite3.connect(db_path, timeout=5, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        answer = httpx.get(f"{proc.url}/readyz", timeout=15)
        assert answer.status_code == 503
        [failed] = answer.json()["failed"]
        assert failed["check"] == "store" and "locked" in failed["reason"]
        for _ in range(3):  # alive at once: under the busy timeout (2 s) the writers wait for
            assert httpx.get(f"{proc.url}/healthz", timeout=1.5).status_code == 200
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert httpx.get(f"{proc.url}/readyz", timeout=10).status_code == 200
