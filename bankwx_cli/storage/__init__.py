"""The store: the only place with SQL. ``open_store(path)`` returns a ``Store``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from bankwx_cli.errors import ConflictError, StoreError
from bankwx_cli.keys import MasterKey, Sealer
from bankwx_cli.storage import migrations
from bankwx_cli.storage.accounts import Accounts, Operators, Orgs
from bankwx_cli.storage.audit import Audit
from bankwx_cli.storage.db import Database
from bankwx_cli.storage.wechat import ApiCalls, Tokens

if TYPE_CHECKING:
    from bankwx_cli.storage.agents import Agents
    from bankwx_cli.storage.broadcasts import Broadcasts, Templates
    from bankwx_cli.storage.engine import FollowerState, KeywordRules, Messages
    from bankwx_cli.storage.follower_sync import FollowerSync
    from bankwx_cli.storage.followers import Followers
    from bankwx_cli.storage.menus import MenuVersions
    from bankwx_cli.storage.outbox import Outbox
    from bankwx_cli.storage.sealed import Census, SealedColumn
    from bankwx_cli.storage.tags import Tags
    from bankwx_cli.storage.windows import Windows


class Store:
    """The SQLite store and its repositories, one per group of tables.

    ``sealer`` holds the master key for the values kept sealed at rest (stored replies,
    outbox payloads); the context gives it the key (``open_store(..., key=...)``).
    The repositories of the larger areas are made on first use, so that a command imports
    only the storage (and models) it uses: start-up time. Making one twice would be harmless
    (a repository holds nothing but the connection and the sealer).
    """

    def __init__(self, db: Database, sealer: Sealer | None = None) -> None:
        self.db = db
        self.path = db.path
        self.sealer = sealer or Sealer()
        self.accounts = Accounts(db)
        self.orgs = Orgs(db)
        self.operators = Operators(db)
        self.audit = Audit(db)
        self.tokens = Tokens(db)
        self.api_calls = ApiCalls(db)

    @cached_property
    def messages(self) -> Messages:
        from bankwx_cli.storage.engine import Messages

        return Messages(self.db, self.sealer)

    @cached_property
    def keyword_rules(self) -> KeywordRules:
        from bankwx_cli.storage.engine import KeywordRules

        return KeywordRules(self.db)

    @cached_property
    def follower_state(self) -> FollowerState:
        from bankwx_cli.storage.engine import FollowerState

        return FollowerState(self.db)

    @cached_property
    def followers(self) -> Followers:
        from bankwx_cli.storage.followers import Followers

        return Followers(self.db)

    @cached_property
    def follower_sync(self) -> FollowerSync:
        from bankwx_cli.storage.follower_sync import FollowerSync

        return FollowerSync(self.db)

    @cached_property
    def tags(self) -> Tags:
        from bankwx_cli.storage.tags import Tags

        return Tags(self.db)

    @cached_property
    def menu_versions(self) -> MenuVersions:
        from bankwx_cli.storage.menus import MenuVersions

        return MenuVersions(self.db)

    @cached_property
    def outbox(self) -> Outbox:
        from bankwx_cli.storage.outbox import Outbox

        return Outbox(self.db, self.sealer)

    @cached_property
    def broadcasts(self) -> Broadcasts:
        from bankwx_cli.storage.broadcasts import Broadcasts

        return Broadcasts(self.db)

    @cached_property
    def templates(self) -> Templates:
        from bankwx_cli.storage.broadcasts import Templates

        return Templates(self.db)

    @cached_property
    def agents(self) -> Agents:
        from bankwx_cli.storage.agents import Agents

        return Agents(self.db)

    @cached_property
    def windows(self) -> Windows:
        from bankwx_cli.storage.windows import Windows

        return Windows(self.db)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.db.transaction():
            yield

    def get_meta(self, key: str) -> str | None:
        value = self.db.scalar("SELECT value FROM meta WHERE key = :k", {"k": key})
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (:k, :v) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            {"k": key, "v": value},
        )

    def config_version(self) -> str:
        """Changes whenever accounts or rules change, so the receiver reloads them."""
        return self.get_meta("config_version") or "0"

    def bump_config_version(self) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES ('config_version', '1') "
            "ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)"
        )

    @staticmethod
    def _sealed_columns() -> tuple[SealedColumn, ...]:
        from bankwx_cli.storage.engine import REPLIES
        from bankwx_cli.storage.outbox import PAYLOADS

        return (REPLIES, PAYLOADS)

    def sealing_census(self) -> list[Census]:
        """Per sealed column: values in clear, and sealed values that do not open."""
        return [column.census(self.db, self.sealer) for column in self._sealed_columns()]

    def mend_sealing(self) -> dict[str, tuple[int, int]]:
        """Seal values in clear, drop those that do not open (a reply; a finished unit's
        payload); per table, (sealed, dropped)."""
        return {c.table: c.mend(self.db, self.sealer) for c in self._sealed_columns()}

    def ping(self) -> bool:
        try:
            self.db.scalar("SELECT 1")
        except sqlite3.Error:
            return False
        return True

    def integrity_problems(self) -> list[str]:
        rows = self.db.all("PRAGMA integrity_check")
        problems = [str(r[0]) for r in rows if str(r[0]) != "ok"]
        problems += [
            f"foreign key broken in {r[0]} row {r[1]}"
            for r in self.db.all("PRAGMA foreign_key_check")
        ]
        return problems

    def schema_version(self) -> int:
        names = [r[0] for r in self.db.all("SELECT name FROM _migrations")]
        return migrations.schema_version(names)

    def backup(self, target: Path) -> None:
        """An online, consistent copy (SQLite's backup API); safe while others write."""
        if target.exists():
            raise ConflictError(f"'{target}' already exists. Choose a new file name.")
        try:
            dest = sqlite3.connect(str(target))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot create '{target}': {exc}.") from None
        try:
            with self.db._lock:
                self.db.conn.backup(dest, pages=1024)
            dest.execute("PRAGMA journal_mode = WAL")
        finally:
            dest.close()

    def close(self) -> None:
        self.db.close()


def open_store(
    path: Path, *, create: bool = False, key: Callable[[], MasterKey] | None = None
) -> Store:
    """Open (or, with create, make) the store at path and apply missing migrations.

    key returns the master key, for the values the store keeps sealed; it is called when one
    is first sealed or opened.

    Raises StoreError when the file is missing (and not create), not a bankwx store, or newer
    than this code.
    """
    if not create and not path.exists():
        raise StoreError(f"no store at {path}. Run bankwx init.")
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = Database(path)
        migrations.apply(db)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"'{path}' is not a bankwx store ({exc}).") from None
    return Store(db, Sealer(key))
