"""Broadcasts, account templates, and the per-follower mass-message receipts (estimates)."""

from __future__ import annotations

import json
from typing import Any

from bankwx_cli.storage.db import Database


def _row(row: Any) -> dict[str, Any]:
    data = dict(row)
    for key in ("content", "audience", "results"):
        data[key] = json.loads(data[key]) if data.get(key) else {}
    return data


class Broadcasts:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, values: dict[str, Any]) -> int:
        row = {
            **values,
            "content": json.dumps(values["content"], ensure_ascii=False, sort_keys=True),
            "audience": json.dumps(values["audience"], ensure_ascii=False, sort_keys=True),
        }
        cols = ", ".join(row)
        params = ", ".join(f":{k}" for k in row)
        cursor = self.db.execute(f"INSERT INTO broadcasts ({cols}) VALUES ({params})", row)  # noqa: S608
        return int(cursor.lastrowid or 0)

    def get(self, broadcast_id: int) -> dict[str, Any] | None:
        row = self.db.one("SELECT * FROM broadcasts WHERE id = :id", {"id": broadcast_id})
        return None if row is None else _row(row)

    def all(self, account: str | None, state: str | None) -> list[dict[str, Any]]:
        where, params = [], {}
        if account:
            where.append("account = :account")
            params["account"] = account
        if state:
            where.append("state = :state")
            params["state"] = state
        sql = "SELECT * FROM broadcasts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_row(r) for r in self.db.all(sql + " ORDER BY id DESC", params)]

    def update(
        self, broadcast_id: int, values: dict[str, Any], expect_state: str | None = None
    ) -> bool:
        """Change fields; with expect_state only if the broadcast is still in that state."""
        row = dict(values)
        for key in ("content", "audience", "results"):
            if key in row:
                row[key] = json.dumps(row[key], ensure_ascii=False, sort_keys=True)
        sets = ", ".join(f"{k} = :{k}" for k in row)
        sql = f"UPDATE broadcasts SET {sets} WHERE id = :_id"  # noqa: S608 - our column names
        params = {**row, "_id": broadcast_id}
        if expect_state:
            sql += " AND state = :_state"
            params["_state"] = expect_state
        return self.db.execute(sql, params).rowcount == 1

    def due(self, now_iso: str) -> list[dict[str, Any]]:
        """Approved broadcasts whose time has come, and sending ones (a killed run's)."""
        return [
            _row(r)
            for r in self.db.all(
                "SELECT * FROM broadcasts WHERE (state = 'approved' AND (scheduled_at IS NULL OR "
                "scheduled_at <= :now)) OR state = 'sending' ORDER BY id",
                {"now": now_iso},
            )
        ]

    def add_openids(self, broadcast_id: int, openids: list[str]) -> None:
        for openid in openids:
            self.db.execute(
                "INSERT INTO broadcast_openids (broadcast_id, openid) VALUES (:b, :o) "
                "ON CONFLICT (broadcast_id, openid) DO NOTHING",
                {"b": broadcast_id, "o": openid},
            )

    def openids(self, broadcast_id: int) -> list[str]:
        return [
            r[0]
            for r in self.db.all(
                "SELECT openid FROM broadcast_openids WHERE broadcast_id = :b ORDER BY openid",
                {"b": broadcast_id},
            )
        ]

    def audience(self, account: str, conditions: dict[str, Any]) -> list[str]:
        return audience(self.db, account, conditions)

    def find_by_source_msgid(self, account: str, msgid: str) -> int | None:
        value = self.db.scalar(
            "SELECT source FROM outbox WHERE account = :a AND wechat_msgid = :m",
            {"a": account, "m": msgid},
        )
        if isinstance(value, str) and value.startswith("broadcast:"):
            return int(value.split(":", 1)[1])
        return None

    # --- the monthly allowance estimate --------------------------------------------------------

    def add_receipts(self, account: str, month: str, openids: list[str]) -> None:
        for openid in openids:
            self.db.execute(
                "INSERT INTO mass_receipts (account, month, openid, receipts) VALUES "
                "(:a, :m, :o, 1) ON CONFLICT (account, month, openid) DO UPDATE SET "
                "receipts = mass_receipts.receipts + 1",
                {"a": account, "m": month, "o": openid},
            )

    def saturated(self, account: str, month: str, openids: list[str], limit: int) -> int:
        """How many of openids already had limit mass messages this month (bankwx's own)."""
        count = 0
        for start in range(0, len(openids), 500):
            chunk = openids[start : start + 500]
            names = {f"o{i}": o for i, o in enumerate(chunk)}
            marks = ", ".join(f":{k}" for k in names)
            count += int(
                self.db.scalar(
                    "SELECT count(*) FROM mass_receipts WHERE account = :a AND month = :m "  # noqa: S608
                    f"AND receipts >= :limit AND openid IN ({marks})",
                    {"a": account, "m": month, "limit": limit, **names},
                )
                or 0
            )
        return count


class Templates:
    def __init__(self, db: Database) -> None:
        self.db = db

    def replace_all(self, account: str, templates: list[dict[str, Any]], at: str) -> None:
        self.db.execute("DELETE FROM templates WHERE account = :a", {"a": account})
        for t in templates:
            self.db.execute(
                "INSERT INTO templates (account, template_id, title, content, example, "
                "primary_industry, deputy_industry, synced_at) VALUES (:account, :template_id, "
                ":title, :content, :example, :primary_industry, :deputy_industry, :at)",
                {
                    "account": account,
                    "template_id": t["template_id"],
                    "title": t.get("title", ""),
                    "content": t.get("content", ""),
                    "example": t.get("example", ""),
                    "primary_industry": t.get("primary_industry", ""),
                    "deputy_industry": t.get("deputy_industry", ""),
                    "at": at,
                },
            )

    def all(self, account: str) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self.db.all(
                "SELECT * FROM templates WHERE account = :a ORDER BY title", {"a": account}
            )
        ]

    def get(self, account: str, template_id: str) -> dict[str, Any] | None:
        row = self.db.one(
            "SELECT * FROM templates WHERE account = :a AND template_id = :t",
            {"a": account, "t": template_id},
        )
        return None if row is None else dict(row)


def audience(db: Database, account: str, conditions: dict[str, Any]) -> list[str]:
    """Subscribed, not blacklisted synced followers matching conditions (tag_id, scene,
    since, until), ordered by openid."""
    where = ["f.account = :account", "f.subscribed = 1", "f.blacklisted = 0"]
    params: dict[str, Any] = {"account": account}
    if conditions.get("tag_id") is not None:
        where.append(
            "EXISTS (SELECT 1 FROM follower_tags t WHERE t.account = f.account "
            "AND t.openid = f.openid AND t.tag_id = :tag_id)"
        )
        params["tag_id"] = int(conditions["tag_id"])
    if conditions.get("scene"):
        where.append("f.subscribe_scene = :scene")
        params["scene"] = conditions["scene"]
    if conditions.get("since"):
        where.append("f.subscribe_at >= :since")
        params["since"] = conditions["since"]
    if conditions.get("until"):
        where.append("f.subscribe_at < :until")
        params["until"] = conditions["until"]
    clauses = " AND ".join(where)  # fixed clauses; values are bound parameters
    sql = f"SELECT f.openid FROM followers f WHERE {clauses} ORDER BY f.openid"  # noqa: S608
    return [r[0] for r in db.all(sql, params)]
