"""Fixtures for the outbox: a simulator, a store with account 'main', an app on a FixedClock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from bxprocs import Sim, SimOptions
from bxtest import Bankwx

from bankwx_cli.clock import FixedClock
from bankwx_cli.context import AppContext
from bankwx_cli.settings import from_environment


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(retry_budget_s="0")  # WeChat busy: the outbox retries


@pytest.fixture
def clock() -> FixedClock:
    """Now, to the whole second (so rate-budget seconds are exact)."""
    return FixedClock(datetime.fromtimestamp(int(datetime.now(UTC).timestamp()), UTC))


@pytest.fixture
def app(with_account: Bankwx, sim: Sim, clock: FixedClock) -> Iterator[AppContext]:
    """The outbox's context, in this process, on the fixed clock."""
    context = AppContext(from_environment(), clock=clock)
    try:
        yield context
    finally:
        context.close()
