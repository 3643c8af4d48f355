"""Fixtures for the simulator: the real app under uvicorn in this process (the session's
`sim_pool`, so tests can look inside its state) and a minimal callback receiver (the bank's side)
under uvicorn too."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from bxprocs import ServerThread, SimPool
from simkit import FOLLOWERS, SEED, Bank, Receiver, Sim

from bankwx_cli.sim.driver import SimDriver
from bankwx_cli.sim.state import SimState


@pytest.fixture(scope="session")
def _receiver_server() -> Iterator[tuple[Receiver, str]]:
    receiver = Receiver()
    with ServerThread(receiver) as server:
        yield receiver, server.url


@pytest.fixture
def receiver(_receiver_server: tuple[Receiver, str]) -> Receiver:
    """The callback receiver, answering ``success`` until a test says otherwise."""
    recv, _ = _receiver_server
    recv.handler = lambda _: (200, b"success")
    recv.requests = []
    return recv


@pytest.fixture
def receiver_url(_receiver_server: tuple[Receiver, str]) -> str:
    return _receiver_server[1] + "/wx/main"


@pytest.fixture
def sim(sim_pool: SimPool) -> Iterator[Sim]:
    """A fresh simulator (20 followers per account, seed 7) on the shared server."""
    app, url = sim_pool.in_thread()
    app.state = SimState(followers=FOLLOWERS, seed=SEED, callback_timeout=2.0)
    with httpx.Client(base_url=url, trust_env=False, timeout=10) as http, SimDriver(url) as driver:
        yield Sim(url, app.state, http, driver)


@pytest.fixture
def bank() -> Bank:
    return Bank()
