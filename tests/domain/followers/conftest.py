"""Fixtures of the followers area's tests."""

from __future__ import annotations

from typing import Any

import pytest
from bxtest import Bankwx


@pytest.fixture
def synced(with_account: Bankwx, small_sim: Any) -> Bankwx:
    """The store with the small simulator's 60 followers synced, and a tag 'VIP'."""
    assert with_account("follower", "sync").exit_code == 0
    created = with_account("tag", "create", "VIP")
    assert created.exit_code == 0, created.output
    return with_account
