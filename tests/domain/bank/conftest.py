"""The sandbox back-end in a thread of the test process, and a store whose back-end it is."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bankkit import KEY
from bxprocs import Proc, start
from bxtest import Bankwx, add_account_args

from bankwx_cli.sandbox.server import SandboxThread
from bankwx_cli.sim.driver import SimDriver


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxThread]:
    with SandboxThread(tmp_path / "bank.db", seed=7, key=KEY) as running:
        yield running


@pytest.fixture
def control(sandbox: SandboxThread) -> Iterator[httpx.Client]:
    """The sandbox's /sandbox/ endpoints (customers, faults, state)."""
    with httpx.Client(base_url=sandbox.url, trust_env=False, timeout=10) as c:
        yield c


@pytest.fixture
def customers(control: httpx.Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = control.get("/sandbox/customers").json()
    return found


@pytest.fixture
def banked(store_ready: Bankwx, sandbox: SandboxThread) -> Bankwx:
    """A store with the account 'main' (its public URL set) and the sandbox as back-end."""
    bx = store_ready
    assert bx(*add_account_args()).exit_code == 0
    done = bx("backend", "set", "--url", sandbox.url, "--api-key", "-", input=KEY)
    assert done.exit_code == 0, done.output
    done = bx("account", "update", "main", "--public-url", "https://bank.example.com/wx/")
    assert done.exit_code == 0, done.output
    return bx


PAGE_RULES = [
    ("余额", "--match", "exact", "--action", "balance"),
    ("明细", "--match", "exact", "--action", "transactions", "--arg", "3"),
    ("绑定", "--match", "exact", "--action", "bind"),
    ("BALANCE", "--match", "click", "--action", "balance"),
    ("TXNS", "--match", "click", "--action", "transactions"),
    ("CARD_BILL", "--match", "click", "--action", "card_bill"),
]


@pytest.fixture
def paged(
    store_ready: Bankwx, sim: SimDriver, sandbox: SandboxThread, receivers: list[Proc],
    tmp_path: Path,
) -> tuple[Bankwx, Proc, str]:  # fmt: skip
    """The account 'main' with the sandbox as back-end, served by `bankwx serve`, its public
    URL the receiver's address, registered with the simulator (OAuth domain 127.0.0.1)."""
    bx = store_ready
    assert bx(*add_account_args()).exit_code == 0
    done = bx("backend", "set", "--url", sandbox.url, "--api-key", "-", input=KEY)
    assert done.exit_code == 0, done.output
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    done = bx("account", "update", "main", "--public-url", f"http://127.0.0.1:{port}")
    assert done.exit_code == 0, done.output
    for args in PAGE_RULES:
        assert bx("keyword", "add", *args).exit_code == 0
    proc = start(["serve", "--port", str(port)], health="/healthz", log=tmp_path / "serve.log")
    receivers.append(proc)
    done = bx("sim", "register", "main", "--callback", f"{proc.url}/wx/main")
    assert done.exit_code == 0, done.output
    assert "web authorisation for 127.0.0.1" in done.stderr
    return bx, proc, f"{proc.url}/bind/main"
