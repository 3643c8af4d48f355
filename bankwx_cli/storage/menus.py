"""Menu versions: every menu deployed, submitted, approved, rejected or rolled back, per account.

A version's ``content`` is the menu in menu/get's shape (JSON text), ``hash`` its content hash.
``state`` moves pending -> (rejected | deploying) and deploying -> live | partial | failed |
unknown; a later deploy turns the live one superseded, ``menu delete`` turns it removed. At most
one version per account is current (live, partial or unknown): what is on WeChat now.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from bankwx_cli.models.changes import Keep, given
from bankwx_cli.models.menus import MenuCall, MenuVersion, MenuVersionChange
from bankwx_cli.storage.db import Database

_CURRENT = "state IN ('live', 'partial', 'unknown')"


def _version(row: sqlite3.Row) -> MenuVersion:
    answer = row["wechat_answer"]
    return MenuVersion(
        account=row["account"],
        version=row["version"],
        state=row["state"],
        content=json.loads(row["content"]),
        hash=row["hash"],
        source=row["source"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        rollback_of=row["rollback_of"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        reason=row["reason"],
        deployed_by=row["deployed_by"],
        deployed_at=row["deployed_at"],
        wechat_answer=tuple(MenuCall.from_json(c) for c in json.loads(answer)) if answer else (),
        note=row["note"],
    )


class MenuVersions:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        *,
        account: str,
        state: str,
        content: dict[str, Any],
        hash: str,
        source: str,
        created_by: str,
        at: str,
        note: str,
        rollback_of: int | None = None,
    ) -> int:
        """Insert a version under the account's next number; returns the number. ``content``
        is the menu in WeChat's menu/get shape (a document, stored as JSON text).

        Call inside a transaction (BEGIN IMMEDIATE keeps the numbers unique).
        """
        number = int(
            self.db.scalar(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM menu_versions WHERE account = :a",
                {"a": account},
            )
        )
        self.db.execute(
            "INSERT INTO menu_versions (account, version, state, content, hash, source, "
            "rollback_of, created_by, created_at, note, updated_at) VALUES (:account, :version, "
            ":state, :content, :hash, :source, :rollback_of, :created_by, :at, :note, :at)",
            {"account": account, "version": number, "state": state,
             "content": json.dumps(content, ensure_ascii=False), "hash": hash, "source": source,
             "rollback_of": rollback_of, "created_by": created_by, "at": at, "note": note},
        )  # fmt: skip
        return number

    def decide(
        self,
        account: str,
        version: int,
        *,
        state: str,
        by: str,
        at: str,
        note: str,
        reason: str | None = None,
    ) -> None:
        """Record a decision on a pending version: rejected, or deploying once approved."""
        change = MenuVersionChange(
            state=state, decided_by=by, decided_at=at, reason=reason, note=note
        )
        self._update(account, version, change, at)

    def finish(
        self,
        account: str,
        version: int,
        *,
        state: str,
        deployed_by: str | None,
        deployed_at: str | None,
        wechat_answer: Sequence[MenuCall],
        note: str,
        at: str,
    ) -> None:
        """Record a deploy's outcome: its state, who deployed it when, its calls."""
        change = MenuVersionChange(
            state=state,
            deployed_by=deployed_by,
            deployed_at=deployed_at,
            wechat_answer=tuple(wechat_answer),
            note=note,
        )
        self._update(account, version, change, at)

    def _update(self, account: str, version: int, change: MenuVersionChange, at: str) -> None:
        values = given(change)
        if not isinstance(change.wechat_answer, Keep):
            calls = [call.to_json() for call in change.wechat_answer]
            values["wechat_answer"] = json.dumps(calls, ensure_ascii=False)
        values["updated_at"] = at
        sets = ", ".join(f"{k} = :{k}" for k in values)
        self.db.execute(
            f"UPDATE menu_versions SET {sets} "  # noqa: S608 - column names are ours
            "WHERE account = :_account AND version = :_version",
            {**values, "_account": account, "_version": version},
        )

    def get(self, account: str, version: int) -> MenuVersion | None:
        row = self.db.one(
            "SELECT * FROM menu_versions WHERE account = :a AND version = :v",
            {"a": account, "v": version},
        )
        return None if row is None else _version(row)

    def all(self, account: str, limit: int | None = None) -> list[MenuVersion]:
        """The account's versions, newest first."""
        sql = "SELECT * FROM menu_versions WHERE account = :a ORDER BY version DESC"
        params: dict[str, Any] = {"a": account}
        if limit:
            sql += " LIMIT :limit"
            params["limit"] = limit
        return [_version(r) for r in self.db.all(sql, params)]

    def current(self, account: str) -> MenuVersion | None:
        """The version that is on WeChat now (live, partial or unknown), if any."""
        row = self.db.one(
            f"SELECT * FROM menu_versions WHERE account = :a AND {_CURRENT} "  # noqa: S608
            "ORDER BY version DESC LIMIT 1",
            {"a": account},
        )
        return None if row is None else _version(row)

    def last_deployed(
        self, account: str, before: int | None, other_than_hash: str | None
    ) -> MenuVersion | None:
        """The newest version that was once on WeChat, older than ``before`` (None: any), whose
        content differs from ``other_than_hash``."""
        row = self.db.one(
            "SELECT * FROM menu_versions WHERE account = :a AND deployed_at IS NOT NULL "
            "AND state IN ('live', 'partial', 'superseded', 'removed') "
            "AND (:before IS NULL OR version < :before) "
            "AND (:hash IS NULL OR hash <> :hash) "
            "ORDER BY version DESC LIMIT 1",
            {"a": account, "before": before, "hash": other_than_hash},
        )
        return None if row is None else _version(row)

    def deploy_times(self, account: str) -> list[tuple[str, int]]:
        """(deployed_at, version) of each version once deployed, oldest deploy first: which
        menu a click was made on (the receiver's roll-ups)."""
        rows = self.db.all(
            "SELECT deployed_at, version FROM menu_versions WHERE account = :a "
            "AND deployed_at IS NOT NULL ORDER BY deployed_at, version",
            {"a": account},
        )
        return [(str(r["deployed_at"]), int(r["version"])) for r in rows]

    def retire_current(
        self,
        account: str,
        state: str,
        at: str,
        keep: int | None = None,
        note: str | None = None,
    ) -> int:
        """Mark the current version(s) ``state`` (superseded, removed), except ``keep``; with
        ``note``, replace their note."""
        cursor = self.db.execute(
            f"UPDATE menu_versions SET state = :state, updated_at = :at, "  # noqa: S608
            "note = COALESCE(:note, note) "
            f"WHERE account = :a AND {_CURRENT} AND (:keep IS NULL OR version <> :keep)",
            {"a": account, "state": state, "at": at, "keep": keep, "note": note},
        )
        return int(cursor.rowcount)
