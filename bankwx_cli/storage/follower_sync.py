"""The progress of follower syncs: one row per account in ``follower_sync`` (the pass under
way: cursor, phase, counts; the lease of the process running it), and the first load's
staged list in ``follower_staging``. The tables are created by migrations.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bankwx_cli.storage.db import Database


class FollowerSync:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- sync progress ------------------------------------------------------------------------

    def sync_state(self, account: str) -> dict[str, Any] | None:
        row = self.db.one("SELECT * FROM follower_sync WHERE account = :a", {"a": account})
        return None if row is None else dict(row)

    def save_sync_state(self, account: str, values: dict[str, Any]) -> None:
        cols = ", ".join(values)
        params = ", ".join(f":{k}" for k in values)
        sets = ", ".join(f"{k} = excluded.{k}" for k in values)
        self.db.execute(
            f"INSERT INTO follower_sync (account, {cols}) VALUES (:account, {params}) "  # noqa: S608 - our columns
            f"ON CONFLICT (account) DO UPDATE SET {sets}",
            {"account": account, **values},
        )

    # --- the first load of an account: the list staged, then written in openid order -----------

    def stage_page(self, account: str, pass_no: int, page: int, openids: Sequence[str]) -> None:
        """Keep a page of the follower list (one row a page) until its profiles are written."""
        self.db.execute(
            "INSERT INTO follower_staging (account, pass_no, page, openids) "
            "VALUES (:a, :p, :n, :o) ON CONFLICT (account, pass_no, page) DO UPDATE "
            "SET openids = excluded.openids",
            {"a": account, "p": pass_no, "n": page, "o": "\n".join(openids)},
        )

    def staged(self, account: str, pass_no: int) -> list[str]:
        """Every openid staged for the pass, sorted, once each."""
        rows = self.db.all(
            "SELECT openids FROM follower_staging WHERE account = :a AND pass_no = :p",
            {"a": account, "p": pass_no},
        )
        found: list[str] = []
        while rows:
            found += str(rows.pop()[0]).split("\n")
        found.sort()
        # once each (a follower who followed again meanwhile is listed twice)
        return [o for i, o in enumerate(found) if o and (i == 0 or found[i - 1] != o)]

    def drop_staged(self, account: str) -> None:
        self.db.execute("DELETE FROM follower_staging WHERE account = :a", {"a": account})

    def last_written(self, account: str, pass_no: int) -> str:
        """The highest openid the pass has written ('' for none): a first load writes in
        openid order, so it resumes after this one."""
        value = self.db.scalar(
            "SELECT max(openid) FROM followers WHERE account = :a AND seen_pass = :p",
            {"a": account, "p": pass_no},
        )
        return str(value or "")
