"""The sandbox back-end in a thread of the test process, and adapters pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from backendkit import KEY

from bankwx_cli.backend.client import BackendClient
from bankwx_cli.sandbox.server import SandboxThread


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxThread]:
    with SandboxThread(tmp_path / "bank.db", seed=7, key=KEY) as running:
        yield running


@pytest.fixture
def control(sandbox: SandboxThread) -> Iterator[httpx.Client]:
    """The sandbox's /sandbox/ endpoints (faults, clock, state, customers)."""
    with httpx.Client(base_url=sandbox.url, trust_env=False, timeout=10) as c:
        yield c


@pytest.fixture
def make_adapter(sandbox: SandboxThread) -> Iterator[Callable[..., BackendClient]]:
    """Adapters to the sandbox (closed at the end); keyword arguments as BackendClient's."""
    made: list[BackendClient] = []

    def make(**options: Any) -> BackendClient:
        options.setdefault("api_key", KEY)
        adapter = BackendClient(sandbox.url, **options)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


@pytest.fixture
def adapter(make_adapter: Callable[..., BackendClient]) -> BackendClient:
    return make_adapter()
