"""The follower sync's progress rows, written through sqlite-utils' upserts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bankwx_cli.models.followers import SyncProgress
from bankwx_cli.storage import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(tmp_path / "bankwx.db", create=True)
    yield store
    store.close()


def test_a_saved_sync_state_reads_back_as_it_was_saved_per_account(store: Store) -> None:
    sync = store.follower_sync
    assert sync.sync_state("main") is None
    first = SyncProgress("main", pass_no=1, kind="full", phase="list")
    with store.transaction():
        sync.save_sync_state(first)
    assert sync.sync_state("main") == first
    assert (first.cursor, first.pages, first.total) == ("", 0, None)  # the defaults
    second = replace(first, cursor="o9", pages=3, total=12, first_load=True, heartbeat_at=1.5)
    with store.transaction():
        sync.save_sync_state(second)
        sync.save_sync_state(SyncProgress("other", pass_no=7))
    assert sync.sync_state("main") == second
    assert (sync.sync_state("other") or SyncProgress("other")).pass_no == 7


def test_a_state_rolled_back_with_its_transaction_is_not_kept(store: Store) -> None:
    """The upsert joins the caller's transaction (sqlite-utils takes a savepoint in it)."""

    def save_then_fail() -> None:
        with store.transaction():
            store.follower_sync.save_sync_state(SyncProgress("main", pass_no=1))
            raise RuntimeError("undone")

    with pytest.raises(RuntimeError):
        save_then_fail()
    assert store.follower_sync.sync_state("main") is None


def test_a_staged_page_written_again_replaces_its_openids(store: Store) -> None:
    sync = store.follower_sync
    with store.transaction():
        sync.stage_page("main", 1, 0, ["o3", "o1"])
        sync.stage_page("main", 1, 1, ["o2"])
        sync.stage_page("main", 1, 0, ["o4", "o1"])
        sync.stage_page("main", 2, 0, ["o8"])
    assert sync.staged("main", 1) == ["o1", "o2", "o4"]
    assert sync.staged("main", 2) == ["o8"]
    with store.transaction():
        sync.drop_staged("main")
    assert sync.staged("main", 1) == []
