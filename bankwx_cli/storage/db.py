"""The SQLite connection: WAL, foreign keys, a busy timeout, explicit transactions.

``synchronous=NORMAL`` in WAL mode, chosen deliberately: a committed transaction survives a
crash of any bankwx process (the WAL is written before COMMIT returns); only a power loss or an
operating-system crash can lose the last transactions before a checkpoint, and it never
corrupts the file. FULL would fsync on every commit, which the callback receiver cannot afford
on its hot path. The README's "Durability" section says the same for operators.

The busy timeout (2 s) stays well below the receiver's 4 s handler deadline, so a callback
waiting on a long writer still answers within WeChat's 5 seconds.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_MS = 2000


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        str(path),
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,  # we issue BEGIN/COMMIT ourselves
        check_same_thread=False,  # guarded by Database._lock
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class Database:
    """One connection and its transactions. Thread-safe: one transaction at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)
        self._lock = threading.RLock()
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction (BEGIN IMMEDIATE). Nested calls join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self.conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self.conn.execute("COMMIT")

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> sqlite3.Cursor:
        with self._lock:
            return self.conn.execute(sql, params or {})

    def one(self, sql: str, params: dict[str, Any] | None = None) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self.conn.execute(sql, params or {}).fetchone()
            return row

    def all(self, sql: str, params: dict[str, Any] | None = None) -> list[sqlite3.Row]:
        with self._lock:
            return list(self.conn.execute(sql, params or {}).fetchall())

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        row = self.one(sql, params)
        return None if row is None else row[0]

    def close(self) -> None:
        with self._lock:
            self.conn.close()
