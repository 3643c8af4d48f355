"""Fixtures for the engine and outbox: a simulator, a store with an account, receivers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bxprocs import Proc, serve, simulator
from bxtest import Bankwx, add_account_args

from bankwx_cli.sim.driver import SimDriver


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimDriver]:
    with simulator(30, 1) as (proc, driver):
        monkeypatch.setenv("BANKWX_API_BASE", proc.url)
        monkeypatch.setenv("BANKWX_SIM", proc.url)
        yield driver


@pytest.fixture
def receivers() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()


@pytest.fixture
def account(store_ready: Bankwx, sim: SimDriver) -> Bankwx:
    """A safe-mode account 'main' in the store (not yet registered with the simulator)."""
    result = store_ready(*add_account_args())
    assert result.exit_code == 0, result.output
    return store_ready


def start_receiver(
    bankwx: Bankwx,
    receivers: list[Proc],
    *args: str,
    name: str = "main",
    env: dict[str, str] | None = None,
) -> Proc:
    """Start `bankwx serve` and register the account's callback with the simulator."""
    proc = serve(*args, env=env)
    receivers.append(proc)
    result = bankwx("sim", "register", name, "--callback", f"{proc.url}/wx/{name}")
    assert result.exit_code == 0, result.output
    return proc
