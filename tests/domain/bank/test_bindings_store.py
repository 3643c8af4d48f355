"""The bindings table: one customer per follower, several followers per customer, found by
customer; only the card's last four digits (a full number is refused before the store)."""

from __future__ import annotations

from pathlib import Path

from bankwx_cli.models.bank import Binding
from bankwx_cli.storage import open_store


def test_one_customer_per_follower_found_by_customer(tmp_path: Path) -> None:
    store = open_store(tmp_path / "bankwx.db", create=True)
    try:
        at = "2026-12-01T00:00:00.000000Z"
        first = Binding("main", "oA", "C1", "1234", at, "alice")
        with store.transaction():
            assert store.bindings.add(first)
            assert not store.bindings.add(Binding("main", "oA", "C2", "9999", at, "alice"))
            assert store.bindings.add(Binding("main", "oB", "C1", "5678", at, "follower:oB"))
            assert store.bindings.add(Binding("other", "oA", "C1", "1234", at, "alice"))
        assert store.bindings.get("main", "oA") == first
        assert first.to_json() == {"customer_id": "C1", "card": "****1234", "bound_at": at}
        found = store.bindings.for_customer("main", "C1")
        assert [b.openid for b in found] == ["oA", "oB"]
        assert store.bindings.for_customer("main", "C2") == []
        with store.transaction():
            assert store.bindings.remove("main", "oA")
            assert not store.bindings.remove("main", "oA")
        assert store.bindings.get("main", "oA") is None
        assert store.bindings.get("other", "oA") is not None
        plan = store.db.all(
            "EXPLAIN QUERY PLAN SELECT openid FROM bindings WHERE account = 'main' "
            "AND customer_id = 'C1'"
        )
        assert "bindings_customer" in " ".join(str(r[3]) for r in plan)
    finally:
        store.db.close()
