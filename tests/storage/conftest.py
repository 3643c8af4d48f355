"""Fixtures for the store's tests: a simulator and receivers on loopback ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bxprocs import Proc, simulator

from bankwx_cli.sim.driver import SimDriver


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimDriver]:
    with simulator(5, 1) as (proc, driver):
        monkeypatch.setenv("BANKWX_API_BASE", proc.url)
        monkeypatch.setenv("BANKWX_SIM", proc.url)
        yield driver


@pytest.fixture
def receivers() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()
