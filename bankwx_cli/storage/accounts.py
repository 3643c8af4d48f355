"""Accounts, organisations and operators."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from bankwx_cli.models.accounts import Account, Operator
from bankwx_cli.models.changes import given
from bankwx_cli.storage.db import Database

if TYPE_CHECKING:
    from bankwx_cli.models.account_changes import AccountUpdate
    from bankwx_cli.models.credentials import SealedSecrets
    from bankwx_cli.models.operators import OperatorUpdate, Org

SEALED_FIELDS = ("secret_enc", "token_enc", "aes_key_enc")


def _account(row: sqlite3.Row) -> Account:
    return Account(
        id=row["id"],
        name=row["name"],
        appid=row["appid"],
        original_id=row["original_id"],
        type=row["type"],
        mode=row["mode"],
        token_mode=row["token_mode"],
        welcome=row["welcome"],
        default_reply=row["default_reply"],
        settings=json.loads(row["settings"] or "{}"),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class Accounts:
    def __init__(self, db: Database) -> None:
        self.db = db

    def all(self) -> list[Account]:
        return [_account(r) for r in self.db.all("SELECT * FROM accounts ORDER BY name")]

    def names(self) -> list[str]:
        return [r[0] for r in self.db.all("SELECT name FROM accounts ORDER BY name")]

    def get(self, name: str) -> Account | None:
        row = self.db.one("SELECT * FROM accounts WHERE name = :name", {"name": name})
        return None if row is None else _account(row)

    def sealed(self, name: str) -> SealedSecrets | None:
        from bankwx_cli.models.credentials import SealedSecrets  # not every command's (start-up)

        row = self.db.one(
            "SELECT secret_enc, token_enc, aes_key_enc FROM accounts WHERE name = :name",
            {"name": name},
        )
        return None if row is None else SealedSecrets(*(row[k] for k in SEALED_FIELDS))

    def has_aes_key(self, name: str) -> bool:
        """Whether the account's EncodingAESKey is stored (safe and compatible mode need it)."""
        sealed = self.sealed(name)
        return sealed is not None and sealed.aes_key_enc is not None

    def insert(self, account: Account, sealed: SealedSecrets) -> None:
        self.db.execute(
            "INSERT INTO accounts (name, appid, secret_enc, token_enc, aes_key_enc, original_id, "
            "type, mode, token_mode, welcome, default_reply, settings, created_at, updated_at) "
            "VALUES (:name, :appid, :secret_enc, :token_enc, :aes_key_enc, :original_id, :type, "
            ":mode, :token_mode, :welcome, :default_reply, :settings, :created_at, :updated_at)",
            {
                "name": account.name,
                "appid": account.appid,
                "secret_enc": sealed.secret_enc,
                "token_enc": sealed.token_enc,
                "aes_key_enc": sealed.aes_key_enc,
                "original_id": account.original_id,
                "type": account.type,
                "mode": account.mode,
                "token_mode": account.token_mode,
                "welcome": account.welcome,
                "default_reply": account.default_reply,
                "settings": json.dumps(account.settings),
                "created_at": account.created_at,
                "updated_at": account.updated_at,
            },
        )

    def update(self, name: str, change: AccountUpdate) -> None:
        values = given(change)
        if "settings" in values:
            values["settings"] = json.dumps(values["settings"])
        sets = ", ".join(f"{k} = :{k}" for k in values)
        self.db.execute(
            f"UPDATE accounts SET {sets} WHERE name = :_name",  # noqa: S608 - column names are ours
            {**values, "_name": name},
        )

    def delete(self, name: str) -> None:
        self.db.execute("DELETE FROM accounts WHERE name = :name", {"name": name})


class Orgs:
    def __init__(self, db: Database) -> None:
        self.db = db

    def all(self) -> list[Org]:
        from bankwx_cli.models.operators import Org  # not every command's (start-up)

        rows = self.db.all(
            "SELECT o.id, o.name, p.name AS parent FROM orgs o "
            "LEFT JOIN orgs p ON p.id = o.parent_id ORDER BY o.name"
        )
        return [Org(id=r["id"], name=r["name"], parent=r["parent"]) for r in rows]

    def get_id(self, name: str) -> int | None:
        value = self.db.scalar("SELECT id FROM orgs WHERE name = :name", {"name": name})
        return None if value is None else int(value)

    def insert(self, name: str, parent_id: int | None, at: str) -> None:
        self.db.execute(
            "INSERT INTO orgs (name, parent_id, created_at) VALUES (:name, :parent, :at)",
            {"name": name, "parent": parent_id, "at": at},
        )


def _operator(row: sqlite3.Row) -> Operator:
    accounts = row["accounts"]
    return Operator(
        name=row["name"],
        role=row["role"],
        org=row["org"],
        accounts=None if accounts is None else tuple(json.loads(accounts)),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class Operators:
    def __init__(self, db: Database) -> None:
        self.db = db

    _SELECT = (
        "SELECT op.name, op.role, op.accounts, op.created_at, op.updated_at, o.name AS org "
        "FROM operators op LEFT JOIN orgs o ON o.id = op.org_id"
    )

    def all(self) -> list[Operator]:
        return [_operator(r) for r in self.db.all(self._SELECT + " ORDER BY op.name")]

    def get(self, name: str) -> Operator | None:
        row = self.db.one(self._SELECT + " WHERE op.name = :name", {"name": name})
        return None if row is None else _operator(row)

    def count(self) -> int:
        return int(self.db.scalar("SELECT count(*) FROM operators") or 0)

    def insert(
        self, name: str, role: str, org_id: int | None, accounts: list[str] | None, at: str
    ) -> None:
        self.db.execute(
            "INSERT INTO operators (name, role, org_id, accounts, created_at, updated_at) "
            "VALUES (:name, :role, :org, :accounts, :at, :at)",
            {
                "name": name,
                "role": role,
                "org": org_id,
                "accounts": None if accounts is None else json.dumps(accounts),
                "at": at,
            },
        )

    def update(self, name: str, change: OperatorUpdate) -> None:
        values = given(change)
        if values.get("accounts") is not None:
            values["accounts"] = json.dumps(values["accounts"])
        sets = ", ".join(f"{k} = :{k}" for k in values)
        self.db.execute(
            f"UPDATE operators SET {sets} WHERE name = :_name",  # noqa: S608 - our column names
            {**values, "_name": name},
        )

    def delete(self, name: str) -> None:
        self.db.execute("DELETE FROM operators WHERE name = :name", {"name": name})
