"""Fixtures of the reports' tests (their helpers are in reportkit.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bxtest import Bankwx, add_account_args
from reportkit import Traffic, utc

from bankwx_cli.clock import FixedClock
from bankwx_cli.context import AppContext
from bankwx_cli.settings import from_environment


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(utc("2026-03-10T00:00"))


@pytest.fixture
def app(with_account: Bankwx, clock: FixedClock) -> Iterator[AppContext]:
    """A store with the plain-mode-free account 'main' and a second account 'card'."""
    added = with_account(*add_account_args("card"))
    assert added.exit_code == 0, added.output
    context = AppContext(from_environment(), clock=clock)
    yield context
    context.close()


@pytest.fixture
def traffic(app: AppContext, clock: FixedClock) -> Traffic:
    return Traffic(app, clock)
