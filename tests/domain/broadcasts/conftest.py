"""Fixtures for broadcasts: a simulator with 2,000 followers, a synced store, two operators."""

from __future__ import annotations

import pytest
from bxprocs import Sim, SimOptions
from bxtest import Bankwx, add_account_args


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=2000, seed=11)


@pytest.fixture
def bsim(sim: Sim) -> Sim:
    return sim


@pytest.fixture
def synced(store_ready: Bankwx, bsim: Sim) -> Bankwx:
    """Account 'main', followers synced, bob an approver, templates synced."""
    assert store_ready(*add_account_args()).exit_code == 0
    assert store_ready("operator", "add", "bob", "--role", "approver").exit_code == 0
    assert store_ready("operator", "add", "pub", "--role", "publisher").exit_code == 0
    synced = store_ready("follower", "sync")
    assert synced.exit_code == 0, synced.output
    assert store_ready("template", "sync").exit_code == 0
    return store_ready
