"""Menu versions: every menu deployed, submitted, approved, rejected or rolled back, per account.

A version's ``content`` is the menu in menu/get's shape (JSON text), ``hash`` its content hash.
``state`` moves pending -> (rejected | deploying) and deploying -> live | partial | failed |
unknown; a later deploy turns the live one superseded, ``menu delete`` turns it removed. At most
one version per account is current (live, partial or unknown): what is on WeChat now.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from bankwx_cli.storage.db import Database

_CURRENT = "state IN ('live', 'partial', 'unknown')"
_JSON_COLUMNS = ("content", "wechat_answer")


def _row(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for column in _JSON_COLUMNS:
        out[column] = json.loads(out[column]) if out[column] else None
    return out


def _encoded(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: json.dumps(v, ensure_ascii=False) if k in _JSON_COLUMNS and v is not None else v
        for k, v in values.items()
    }


class MenuVersions:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, values: dict[str, Any]) -> int:
        """Insert a version under the account's next number; returns the number.

        Call inside a transaction (BEGIN IMMEDIATE keeps the numbers unique).
        """
        number = int(
            self.db.scalar(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM menu_versions WHERE account = :a",
                {"a": values["account"]},
            )
        )
        row = _encoded({**values, "version": number})
        cols = ", ".join(row)
        params = ", ".join(f":{k}" for k in row)
        self.db.execute(
            f"INSERT INTO menu_versions ({cols}) VALUES ({params})",  # noqa: S608 - our columns
            row,
        )
        return number

    def update(self, account: str, version: int, values: dict[str, Any]) -> None:
        row = _encoded(values)
        sets = ", ".join(f"{k} = :{k}" for k in row)
        self.db.execute(
            f"UPDATE menu_versions SET {sets} "  # noqa: S608 - column names are ours
            "WHERE account = :_account AND version = :_version",
            {**row, "_account": account, "_version": version},
        )

    def get(self, account: str, version: int) -> dict[str, Any] | None:
        row = self.db.one(
            "SELECT * FROM menu_versions WHERE account = :a AND version = :v",
            {"a": account, "v": version},
        )
        return None if row is None else _row(row)

    def all(self, account: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The account's versions, newest first."""
        sql = "SELECT * FROM menu_versions WHERE account = :a ORDER BY version DESC"
        params: dict[str, Any] = {"a": account}
        if limit:
            sql += " LIMIT :limit"
            params["limit"] = limit
        return [_row(r) for r in self.db.all(sql, params)]

    def current(self, account: str) -> dict[str, Any] | None:
        """The version that is on WeChat now (live, partial or unknown), if any."""
        row = self.db.one(
            f"SELECT * FROM menu_versions WHERE account = :a AND {_CURRENT} "  # noqa: S608
            "ORDER BY version DESC LIMIT 1",
            {"a": account},
        )
        return None if row is None else _row(row)

    def last_deployed(
        self, account: str, before: int | None, other_than_hash: str | None
    ) -> dict[str, Any] | None:
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
        return None if row is None else _row(row)

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
