"""The progress of follower syncs: one row per account in ``follower_sync`` (the pass under
way: cursor, phase, counts; the lease of the process running it), and the first load's
staged list in ``follower_staging``. The tables are created by migrations.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields
from typing import Any

from bankwx_cli.models.followers import SyncProgress
from bankwx_cli.storage.db import Database


class FollowerSync:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _upsert(self, table: str, row: dict[str, Any], pk: str | tuple[str, ...]) -> None:
        """Insert the row, or set the columns it gives of the row with its key (sqlite-utils:
        one row a page of the follower list, where its lookups of the table cost nothing)."""
        with self.db._lock:
            self.db.utils.table(table).upsert(row, pk=pk)

    # --- sync progress ------------------------------------------------------------------------

    def sync_state(self, account: str) -> SyncProgress | None:
        row = self.db.one("SELECT * FROM follower_sync WHERE account = :a", {"a": account})
        if row is None:
            return None
        values = {f.name: row[f.name] for f in fields(SyncProgress)}
        return SyncProgress(**{**values, "first_load": bool(values["first_load"])})

    def save_sync_state(self, progress: SyncProgress) -> None:
        self._upsert("follower_sync", asdict(progress), "account")

    # --- the first load of an account: the list staged, then written in openid order -----------

    def stage_page(self, account: str, pass_no: int, page: int, openids: Sequence[str]) -> None:
        """Keep a page of the follower list (one row a page) until its profiles are written."""
        row = {"account": account, "pass_no": pass_no, "page": page, "openids": "\n".join(openids)}
        self._upsert("follower_staging", row, ("account", "pass_no", "page"))

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
