"""Numbered schema migrations, applied in order on open, each in its own transaction.

Never edit a migration once released; add a new one. A store that has applied a migration this
code does not know is newer than the code and is refused.

Opening a store whose migrations are all applied must stay cheap (every command does it): a
migration that uses sqlite-utils takes it from ``db.utils``, imported on first use, never from a
module-level ``import sqlite_utils`` here or in the modules that define migrations.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from bankwx_cli.errors import StoreError
from bankwx_cli.storage.broadcasts import m0007_broadcasts
from bankwx_cli.storage.db import Database
from bankwx_cli.storage.engine import m0003_engine, m0008_lean_log
from bankwx_cli.storage.followers import m0006_followers
from bankwx_cli.storage.menus import m0005_menus
from bankwx_cli.storage.outbox import m0004_outbox
from bankwx_cli.storage.wechat import m0002_wechat

Migration = Callable[[Database], None]


def m0001_foundation(db: Database) -> None:
    db.execute(
        """CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE accounts (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            appid TEXT NOT NULL,
            secret_enc BLOB NOT NULL,
            token_enc BLOB NOT NULL,
            aes_key_enc BLOB,
            original_id TEXT NOT NULL,
            type TEXT NOT NULL,
            mode TEXT NOT NULL,
            token_mode TEXT NOT NULL DEFAULT 'stable',
            welcome TEXT,
            default_reply TEXT,
            settings TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE orgs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            parent_id INTEGER REFERENCES orgs(id),
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE operators (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL,
            org_id INTEGER REFERENCES orgs(id),
            accounts TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            operator TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            params TEXT NOT NULL,
            outcome TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX audit_at ON audit(at)")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("m0001_foundation", m0001_foundation),
    ("m0002_wechat", m0002_wechat),
    ("m0003_engine", m0003_engine),
    ("m0004_outbox", m0004_outbox),
    ("m0005_menus", m0005_menus),
    ("m0006_followers", m0006_followers),
    ("m0007_broadcasts", m0007_broadcasts),
    ("m0008_lean_log", m0008_lean_log),
]


def schema_version(names: list[str]) -> int:
    return max((int(n[1:5]) for n in names), default=0)


def apply(db: Database) -> None:
    """Apply what is missing; refuse a store newer than this code."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    applied = [r["name"] for r in db.all("SELECT name FROM _migrations ORDER BY name")]
    known = [name for name, _ in MIGRATIONS]
    unknown = [n for n in applied if n not in known]
    if unknown:
        raise StoreError(
            f"the store at {db.path} is from a newer bankwx (schema {schema_version(applied)}; "
            f"this bankwx knows up to {schema_version(known)}). Upgrade bankwx to use it."
        )
    for name, migrate in MIGRATIONS:
        if name in applied:
            continue
        with db.transaction():
            if db.scalar("SELECT 1 FROM _migrations WHERE name = :n", {"n": name}):
                continue  # another process applied it meanwhile
            migrate(db)
            db.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (:n, :at)",
                {"n": name, "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
            )
