"""What the engine learns about a follower between syncs, read back as a model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bxtest import Bankwx

from bankwx_cli.context import AppContext
from bankwx_cli.models.messages import EngineState
from bankwx_cli.settings import from_environment


@pytest.fixture
def app(with_account: Bankwx) -> Iterator[AppContext]:
    context = AppContext(from_environment())
    yield context
    context.close()


def test_a_followers_state_reads_back_typed(app: AppContext) -> None:
    state = app.store.follower_state
    assert state.get("main", "oNobody") is None
    at = "2026-12-02T08:00:00.000000Z"
    state.followed("main", "oA", at, "qr1")
    state.located("main", "oA", 31.2, 121.5, at)
    assert state.get("main", "oA") == EngineState(
        "main", "oA", True, at, None, "qr1", 31.2, 121.5, at
    )
    state.unfollowed("main", "oA", at)
    gone = state.get("main", "oA")
    assert gone is not None and gone.subscribed is False and gone.unsubscribe_at == at
    state.located("main", "oB", 1.0, 2.0, at)
    located = state.get("main", "oB")
    assert located is not None and located.subscribed is None  # no event seen
    assert located.to_json() == {
        "account": "main", "openid": "oB", "subscribed": None, "subscribe_at": None,
        "unsubscribe_at": None, "scene": None, "latitude": 1.0, "longitude": 2.0,
        "location_at": at,
    }  # fmt: skip
    assert state.get("other", "oA") is None
