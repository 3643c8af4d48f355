"""The sandbox back-end in a thread of the test process, on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bankwx_cli.sandbox.server import SandboxThread

AUTH = {"Authorization": "Bearer sandbox"}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxThread]:
    with SandboxThread(tmp_path / "bank.db", seed=7) as running:
        yield running


@pytest.fixture
def http(sandbox: SandboxThread) -> Iterator[httpx.Client]:
    """A client of the sandbox, sending its key."""
    with httpx.Client(base_url=sandbox.url, headers=AUTH, trust_env=False, timeout=10) as c:
        yield c
