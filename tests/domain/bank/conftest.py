"""The sandbox back-end in a thread of the test process, and a store whose back-end it is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bankkit import KEY
from bxtest import Bankwx, add_account_args

from bankwx_cli.sandbox.server import SandboxThread


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
