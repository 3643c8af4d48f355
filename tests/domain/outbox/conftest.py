"""Fixtures for the outbox: a simulator, a store with account 'main', an app on a FixedClock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from bxprocs import simulator
from bxtest import Bankwx

from bankwx_cli.clock import FixedClock
from bankwx_cli.context import AppContext
from bankwx_cli.settings import from_environment
from bankwx_cli.sim.driver import SimDriver


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimDriver]:
    with simulator(30, 1) as (proc, driver):
        monkeypatch.setenv("BANKWX_API_BASE", proc.url)
        monkeypatch.setenv("BANKWX_SIM", proc.url)
        monkeypatch.setenv("BANKWX_RETRY_BUDGET_S", "0")  # WeChat busy: the outbox retries
        yield driver


@pytest.fixture
def clock() -> FixedClock:
    """Now, to the whole second (so rate-budget seconds are exact)."""
    return FixedClock(datetime.fromtimestamp(int(datetime.now(UTC).timestamp()), UTC))


@pytest.fixture
def app(with_account: Bankwx, sim: SimDriver, clock: FixedClock) -> Iterator[AppContext]:
    """The outbox's context, in this process, on the fixed clock."""
    context = AppContext(from_environment(), clock=clock)
    try:
        yield context
    finally:
        context.close()
