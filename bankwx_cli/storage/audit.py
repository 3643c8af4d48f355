"""The audit log: append-only rows, each hashed and chained to the previous one.

The toolkit never updates or deletes an audit row. The head of the chain (last id and hash) is
also kept in ``meta``, so that removing the newest rows is detected as well.

Each row names the operating-system user and the host that wrote it (m0009). A row's hash
covers them when they are set; rows written before m0009 have neither and keep their hashes.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from bankwx_cli.storage.db import Database

if TYPE_CHECKING:
    from bankwx_cli.models.audit import AuditEntry

GENESIS = "0" * 64


def row_hash(prev_hash: str, entry_id: int, at: str, operator: str, action: str,
             target: str, params: str, outcome: str, os_user: str = "",
             host: str = "") -> str:  # fmt: skip
    fields: list[object] = [prev_hash, entry_id, at, operator, action, target, params, outcome]
    if os_user or host:  # rows from before m0009 have neither: their hash stays as it was
        fields += [os_user, host]
    payload = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    import hashlib  # loaded when a row is written or checked, not by every command (start-up)

    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _entry(row: sqlite3.Row) -> AuditEntry:
    from bankwx_cli.models.audit import AuditEntry  # read by audit commands only (start-up)

    return AuditEntry(
        id=row["id"],
        at=row["at"],
        operator=row["operator"],
        action=row["action"],
        target=row["target"],
        params=json.loads(row["params"]),
        outcome=row["outcome"],
        os_user=row["os_user"],
        host=row["host"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


class Audit:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(
        self,
        at: str,
        operator: str,
        action: str,
        target: str,
        params: dict[str, Any],
        outcome: str,
        os_user: str = "",
        host: str = "",
    ) -> int:
        """Append one row. Call inside a transaction (BEGIN IMMEDIATE serialises the chain).
        ``params`` is what the action was given, redacted (``domain/audit.py``): each action's
        own JSON record, hashed into the chain as it is, hence a dict and not a model."""
        head = self.db.one("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")
        prev_hash = head["hash"] if head else GENESIS
        entry_id = (head["id"] if head else 0) + 1
        params_text = json.dumps(params, ensure_ascii=False, sort_keys=True)
        digest = row_hash(
            prev_hash, entry_id, at, operator, action, target, params_text, outcome, os_user, host
        )
        self.db.execute(
            "INSERT INTO audit (id, at, operator, action, target, params, outcome, os_user, host,"
            " prev_hash, hash) VALUES (:id, :at, :op, :action, :target, :params, :outcome,"
            " :os_user, :host, :prev, :hash)",
            {
                "id": entry_id,
                "at": at,
                "op": operator,
                "action": action,
                "target": target,
                "params": params_text,
                "outcome": outcome,
                "os_user": os_user,
                "host": host,
                "prev": prev_hash,
                "hash": digest,
            },
        )
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES ('audit_head', :v) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            {"v": f"{entry_id}:{digest}"},
        )
        return entry_id

    def all(
        self,
        since: str | None = None,
        until: str | None = None,
        operator: str | None = None,
        action: str | None = None,
        limit: int | None = None,
        oldest_first: bool = False,
    ) -> list[AuditEntry]:
        """Rows matching the filters, newest first (or oldest first); ``limit``: the first N
        of that order (the newest N, by default)."""
        where, params = [], {}
        if since:
            where.append("at >= :since")
            params["since"] = since
        if until:
            where.append("at < :until")
            params["until"] = until
        if operator:
            where.append("operator = :operator")
            params["operator"] = operator
        if action:
            # 'menu' matches menu.deploy, menu.rollback, ...; 'menu.deploy' matches itself
            where.append("(action = :action OR action LIKE :prefix)")
            params["action"] = action
            params["prefix"] = action + ".%"
        sql = "SELECT * FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id" if oldest_first else " ORDER BY id DESC"
        if limit:
            sql += " LIMIT :limit"
            params["limit"] = str(limit)
        return [_entry(r) for r in self.db.all(sql, params)]

    def verify(self) -> list[str]:
        """Problems in the chain, each naming the row; empty when intact."""
        problems: list[str] = []
        prev_hash, expected_id = GENESIS, 1
        for row in self.db.conn.execute("SELECT * FROM audit ORDER BY id"):
            if row["id"] != expected_id:
                problems.append(f"audit rows {expected_id} to {row['id'] - 1} are missing")
            digest = row_hash(
                row["prev_hash"], row["id"], row["at"], row["operator"], row["action"],
                row["target"], row["params"], row["outcome"], row["os_user"], row["host"],
            )  # fmt: skip
            if row["prev_hash"] != prev_hash:
                problems.append(f"audit row {row['id']} does not chain to the row before it")
            if digest != row["hash"]:
                problems.append(f"audit row {row['id']} was edited (its hash does not match)")
            prev_hash, expected_id = row["hash"], row["id"] + 1
        head = self.db.scalar("SELECT value FROM meta WHERE key = 'audit_head'")
        last = f"{expected_id - 1}:{prev_hash}"
        if head is not None and head != last:
            problems.append(
                f"the audit log ends at row {expected_id - 1}, but row {head.split(':')[0]} "
                "was written: newest rows were removed or edited"
            )
        return problems
