"""Branches and ATMs, and the R*Tree over their points (tables made by m0012_branches).

A nearest lookup asks for the branches inside bounding boxes (``in_boxes``): the R*Tree
``branch_boxes`` finds them, each row is then read by its key (a CROSS JOIN, which SQLite never
reorders: left to itself, the planner may prefer walking the account's index and probing the
R*Tree row by row, a scan of every branch of the account). The domain computes the exact
distances (bankwx_cli/domain/branches.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from bankwx_cli.models.branches import Branch
from bankwx_cli.storage.db import Database

Box = tuple[float, float, float, float]  # min_lat, max_lat, min_lng, max_lng

_COLUMNS = "b.account, b.id, b.name, b.type, b.lat, b.lng, b.address, b.phone, b.hours, b.services"
_IN_BOX = (
    "SELECT b.account, b.id, b.name, b.type, b.lat, b.lng, b.address, b.phone, b.hours, "
    "b.services FROM branch_boxes r CROSS JOIN branches b ON b.seq = r.seq "
    "WHERE r.max_lat >= :lat0 AND r.min_lat <= :lat1 AND r.max_lng >= :lng0 "
    "AND r.min_lng <= :lng1 AND b.account = :account"
)


def _branch(row: Any) -> Branch:
    return Branch(
        account=row["account"],
        id=row["id"],
        name=row["name"],
        type=row["type"],
        lat=row["lat"],
        lng=row["lng"],
        address=row["address"],
        phone=row["phone"],
        hours=row["hours"],
        services=tuple(json.loads(row["services"] or "[]")),
    )


def _row(branch: Branch, at: str) -> dict[str, Any]:
    return {
        "account": branch.account,
        "id": branch.id,
        "name": branch.name,
        "type": branch.type,
        "lat": branch.lat,
        "lng": branch.lng,
        "address": branch.address,
        "phone": branch.phone,
        "hours": branch.hours,
        "services": json.dumps(list(branch.services), ensure_ascii=False),
        "created_at": at,
        "updated_at": at,
    }


class Branches:
    """An account's branches and ATMs."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, account: str, branch_id: str) -> Branch | None:
        row = self.db.one(
            f"SELECT {_COLUMNS} FROM branches b WHERE b.account = :a AND b.id = :i",  # noqa: S608
            {"a": account, "i": branch_id},
        )
        return None if row is None else _branch(row)

    def find(self, branch_id: str) -> list[Branch]:
        """The branches of this id on every account, by account."""
        rows = self.db.all(
            f"SELECT {_COLUMNS} FROM branches b WHERE b.id = :i ORDER BY b.account",  # noqa: S608
            {"i": branch_id},
        )
        return [_branch(r) for r in rows]

    def all(self, account: str, type_: str | None = None) -> list[Branch]:
        sql = f"SELECT {_COLUMNS} FROM branches b WHERE b.account = :a"  # noqa: S608 - ours
        if type_ is not None:
            sql += " AND b.type = :t"
        rows = self.db.all(sql + " ORDER BY b.id", {"a": account, "t": type_})
        return [_branch(r) for r in rows]

    def ids(self, account: str) -> set[str]:
        rows = self.db.all("SELECT id FROM branches WHERE account = :a", {"a": account})
        return {r[0] for r in rows}

    def any(self, account: str) -> bool:
        """Whether the account has a branch (a point read of the id index)."""
        return self.db.scalar("SELECT 1 FROM branches WHERE account = :a LIMIT 1",
                              {"a": account}) is not None  # fmt: skip

    def count(self, account: str) -> int:
        return int(self.db.scalar("SELECT count(*) FROM branches WHERE account = :a",
                                  {"a": account}))  # fmt: skip

    def insert_many(self, branches: Iterable[Branch], at: str) -> None:
        """Insert new branches (ids not yet the account's), with sqlite-utils' bulk insert.
        Call inside one transaction."""
        self.db.utils.table("branches").insert_all((_row(b, at) for b in branches), batch_size=500)

    def upsert(self, branch: Branch, at: str) -> None:
        """Add the branch, or change the account's branch of its id."""
        row = _row(branch, at)
        self.db.execute(
            "INSERT INTO branches (account, id, name, type, lat, lng, address, phone, hours, "
            "services, created_at, updated_at) VALUES (:account, :id, :name, :type, :lat, :lng, "
            ":address, :phone, :hours, :services, :created_at, :updated_at) "
            "ON CONFLICT (account, id) DO UPDATE SET name = excluded.name, "
            "type = excluded.type, lat = excluded.lat, lng = excluded.lng, "
            "address = excluded.address, phone = excluded.phone, hours = excluded.hours, "
            "services = excluded.services, updated_at = excluded.updated_at",
            row,
        )

    def delete(self, account: str, branch_id: str) -> bool:
        cursor = self.db.execute(
            "DELETE FROM branches WHERE account = :a AND id = :i", {"a": account, "i": branch_id}
        )
        return cursor.rowcount > 0

    def delete_except(self, account: str, keep: Sequence[str]) -> int:
        """Remove the account's branches whose id is not in keep; how many were removed."""
        cursor = self.db.execute(
            "DELETE FROM branches WHERE account = :a "
            "AND id NOT IN (SELECT value FROM json_each(:keep))",
            {"a": account, "keep": json.dumps(list(keep))},
        )
        return cursor.rowcount

    def in_boxes(
        self, account: str, boxes: Sequence[Box], type_: str | None = None
    ) -> list[Branch]:
        """The account's branches (of the type) whose point is inside one of the boxes (by
        the R*Tree; a point on two boxes' edge comes once)."""
        found: dict[str, Branch] = {}
        for box in boxes:
            sql, params = self._box_query(account, box, type_)
            for row in self.db.all(sql, params):
                found.setdefault(row["id"], _branch(row))
        return list(found.values())

    def plan(self, account: str, box: Box, type_: str | None = None) -> list[str]:
        """EXPLAIN QUERY PLAN of a box lookup: its steps' details (for tests and checks)."""
        sql, params = self._box_query(account, box, type_)
        return [str(r["detail"]) for r in self.db.all("EXPLAIN QUERY PLAN " + sql, params)]

    @staticmethod
    def _box_query(account: str, box: Box, type_: str | None) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {
            "account": account,
            "lat0": box[0],
            "lat1": box[1],
            "lng0": box[2],
            "lng1": box[3],
        }
        if type_ is None:
            return _IN_BOX, params
        return _IN_BOX + " AND b.type = :type", {**params, "type": type_}
