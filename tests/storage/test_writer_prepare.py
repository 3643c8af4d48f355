"""The group-commit writer's prepare hooks: one call per batch, with its units' keys, inside
the batch's transaction and before its units."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from bankwx_cli.storage.db import Database, Writer


def _database(tmp_path: Path) -> Database:
    db = Database(tmp_path / "w.db")
    db.conn.execute("CREATE TABLE t (k TEXT)")
    return db


def test_a_batch_calls_each_prepare_hook_once_with_its_units_keys(tmp_path: Path) -> None:
    db = _database(tmp_path)
    writer = Writer(db)
    gate, started = threading.Event(), threading.Event()
    events: list[Any] = []

    def blocker() -> None:
        started.set()
        gate.wait(5)

    def prefetch(keys: list[Any]) -> None:
        events.append(("prepare", list(keys), db.conn.in_transaction))

    def unit(key: str) -> Any:
        def run() -> str:
            events.append(("unit", key))
            db.execute("INSERT INTO t (k) VALUES (:k)", {"k": key})
            return key

        return run

    results: list[Any] = []
    done_all = threading.Event()

    def done(value: Any, error: BaseException | None) -> None:
        results.append(error or value)
        if len(results) == 5:
            done_all.set()

    writer.submit(blocker, done)  # holds the writer: the next units queue into one batch
    assert started.wait(5)
    for key in ("a", "b", "c"):
        writer.submit(unit(key), done, (prefetch, key))
    writer.submit(unit("plain"), done)  # no prepare: not among the keys
    gate.set()
    assert done_all.wait(5)
    writer.close()
    assert results[1:] == ["a", "b", "c", "plain"]
    assert events == [("prepare", ["a", "b", "c"], True), ("unit", "a"), ("unit", "b"),
                      ("unit", "c"), ("unit", "plain")]  # fmt: skip
    db.close()
