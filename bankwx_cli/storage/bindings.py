"""Followers bound to bank customers (table ``bindings``): one customer per follower, any
number of followers per customer."""

from __future__ import annotations

import sqlite3

from bankwx_cli.models.bank import Binding
from bankwx_cli.storage.db import Database

_COLUMNS = "account, openid, customer_id, card_last4, bound_at, bound_by"


def _binding(row: sqlite3.Row) -> Binding:
    return Binding(
        account=str(row["account"]),
        openid=str(row["openid"]),
        customer_id=str(row["customer_id"]),
        card_last4=str(row["card_last4"]),
        bound_at=str(row["bound_at"]),
        bound_by=str(row["bound_by"]),
    )


class Bindings:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, account: str, openid: str) -> Binding | None:
        row = self.db.one(
            f"SELECT {_COLUMNS} FROM bindings WHERE account = :a AND openid = :o",  # noqa: S608
            {"a": account, "o": openid},
        )
        return None if row is None else _binding(row)

    def for_customer(self, account: str, customer_id: str) -> list[Binding]:
        """Every follower of the account bound to the customer, oldest binding first."""
        rows = self.db.all(
            f"SELECT {_COLUMNS} FROM bindings WHERE account = :a AND customer_id = :c "  # noqa: S608
            "ORDER BY bound_at, openid",
            {"a": account, "c": customer_id},
        )
        return [_binding(r) for r in rows]

    def add(self, binding: Binding) -> bool:
        """Store the binding; False (nothing written) when the follower is already bound.
        Call inside a transaction."""
        cursor = self.db.execute(
            f"INSERT INTO bindings ({_COLUMNS}) "  # noqa: S608
            "VALUES (:a, :o, :c, :card, :at, :by) ON CONFLICT (account, openid) DO NOTHING",
            {
                "a": binding.account,
                "o": binding.openid,
                "c": binding.customer_id,
                "card": binding.card_last4,
                "at": binding.bound_at,
                "by": binding.bound_by,
            },
        )
        return cursor.rowcount == 1

    def remove(self, account: str, openid: str) -> bool:
        """Remove the follower's binding; False when there was none. Call inside a transaction."""
        cursor = self.db.execute(
            "DELETE FROM bindings WHERE account = :a AND openid = :o", {"a": account, "o": openid}
        )
        return cursor.rowcount == 1
