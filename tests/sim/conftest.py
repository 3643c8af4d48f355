"""Fixtures for the simulator: the real app under uvicorn on a free loopback port and a minimal
callback receiver (the bank's side) under uvicorn too."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from simkit import FOLLOWERS, SEED, Bank, Receiver, ServerThread, Sim

from bankwx_cli.sim.app import SimApp
from bankwx_cli.sim.driver import SimDriver
from bankwx_cli.sim.state import SimState


@pytest.fixture(scope="session")
def _sim_server() -> Iterator[tuple[SimApp, str]]:
    app = SimApp(SimState())
    with ServerThread(app) as server:
        yield app, server.url


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
def sim(_sim_server: tuple[SimApp, str]) -> Iterator[Sim]:
    """A fresh simulator (20 followers per account, seed 7) on the shared server."""
    app, url = _sim_server
    app.state = SimState(followers=FOLLOWERS, seed=SEED, callback_timeout=2.0)
    with httpx.Client(base_url=url, trust_env=False, timeout=10) as http, SimDriver(url) as driver:
        yield Sim(url, app.state, http, driver)


@pytest.fixture
def bank() -> Bank:
    return Bank()
