"""The store: the only place with SQL. ``open_store(path)`` returns a ``Store``."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from bankwx_cli.errors import ConflictError, StoreError
from bankwx_cli.keys import MasterKey, Sealer
from bankwx_cli.storage import migrations
from bankwx_cli.storage.accounts import Accounts, Operators, Orgs
from bankwx_cli.storage.audit import Audit
from bankwx_cli.storage.db import Database, is_read_only_error, read_only_error
from bankwx_cli.storage.identity import OsUsers
from bankwx_cli.storage.wechat import ApiCalls, Tokens

if TYPE_CHECKING:
    from bankwx_cli.storage.agents import Agents
    from bankwx_cli.storage.alert_preferences import AlertPreferencesStore
    from bankwx_cli.storage.alerts import Alerts
    from bankwx_cli.storage.backend import BackendSettings
    from bankwx_cli.storage.bind_sessions import BindSessions
    from bankwx_cli.storage.bindings import Bindings
    from bankwx_cli.storage.branches import Branches
    from bankwx_cli.storage.broadcasts import Broadcasts, Templates
    from bankwx_cli.storage.engine import FollowerState, KeywordRules, Messages
    from bankwx_cli.storage.follower_sync import FollowerSync
    from bankwx_cli.storage.followers import Followers
    from bankwx_cli.storage.menus import MenuVersions
    from bankwx_cli.storage.outbox import Outbox
    from bankwx_cli.storage.reports import Rollups
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
        self.os_users = OsUsers(db)
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
    def backend(self) -> BackendSettings:
        from bankwx_cli.storage.backend import BackendSettings

        return BackendSettings(self.db)

    @cached_property
    def bindings(self) -> Bindings:
        from bankwx_cli.storage.bindings import Bindings

        return Bindings(self.db)

    @cached_property
    def bind_sessions(self) -> BindSessions:
        from bankwx_cli.storage.bind_sessions import BindSessions

        return BindSessions(self.db)

    @cached_property
    def windows(self) -> Windows:
        from bankwx_cli.storage.windows import Windows

        return Windows(self.db)

    @cached_property
    def branches(self) -> Branches:
        from bankwx_cli.storage.branches import Branches

        return Branches(self.db)

    @cached_property
    def alerts(self) -> Alerts:
        from bankwx_cli.storage.alerts import Alerts

        return Alerts(self.db, self.sealer)

    @cached_property
    def alert_preferences(self) -> AlertPreferencesStore:
        from bankwx_cli.storage.alert_preferences import AlertPreferencesStore

        return AlertPreferencesStore(self.db)

    @cached_property
    def rollups(self) -> Rollups:
        from bankwx_cli.storage.reports import Rollups

        return Rollups(self.db)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.db.transaction():
            yield

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One snapshot for several reads, never the write lock (``Database.reading``)."""
        with self.db.reading():
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
        from bankwx_cli.storage.alerts import EVENT_DATA
        from bankwx_cli.storage.engine import REPLIES
        from bankwx_cli.storage.outbox import PAYLOADS

        return (REPLIES, PAYLOADS, EVENT_DATA)

    def sealing_census(self) -> list[Census]:
        """Per sealed column: values in clear, and sealed values that do not open."""
        return [column.census(self.db, self.sealer) for column in self._sealed_columns()]

    def mend_sealing(self) -> dict[str, tuple[int, int]]:
        """Seal values in clear, drop those that do not open (a reply; a finished unit's
        payload); per table, (sealed, dropped)."""
        return {c.table: c.mend(self.db, self.sealer) for c in self._sealed_columns()}

    def ping(self) -> bool:
        """Whether the store answers a read (``Database.ping``: never waits for a write)."""
        return self.db.ping()

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

    @property
    def read_only(self) -> bool:
        """The store was opened read-only (its file or folder cannot be written)."""
        return self.db.read_only is not None

    def backup(self, target: Path) -> BackupCopy:
        """An online, consistent copy (SQLite's backup API); safe while others write. The copy
        (and its WAL) is readable by its owner only. Nothing is left behind when it fails."""
        create_private(target, "the backup")
        try:
            dest = sqlite3.connect(str(target))
            try:
                with self.db._lock:
                    self.db.conn.backup(dest, pages=1024)
                dest.execute("PRAGMA journal_mode = WAL")
                tables = [
                    str(r[0])
                    for r in dest.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table' "
                        "AND name NOT LIKE 'sqlite_%' ORDER BY name"
                    )
                ]
                rows = {
                    t: int(dest.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])  # noqa: S608 - names from sqlite_master
                    for t in tables
                }
            finally:
                dest.close()
        except sqlite3.Error as exc:
            target.unlink(missing_ok=True)
            raise StoreError(f"cannot write the backup '{target}' ({exc}).") from None
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return BackupCopy(target, target.stat().st_size, rows)

    def close(self) -> None:
        self.db.close()


@dataclass(frozen=True)
class BackupCopy:
    """What ``Store.backup`` made: the file, its size in bytes, and rows per table."""

    path: Path
    size: int
    rows: dict[str, int]


SQLITE_HEADER = b"SQLite format 3\x00"


def create_private(path: Path, what: str) -> None:
    """Create an empty file readable by its owner only (0600, whatever the umask), never
    overwriting one and never making folders. Raises ConflictError or StoreError naming the
    problem; nothing is created then."""
    folder = path.parent
    if path.is_dir():
        raise ConflictError(f"'{path}' is a directory. Give a file name for {what}.")
    if path.exists() or path.is_symlink():
        raise ConflictError(f"'{path}' already exists. Choose a new file name.")
    if not folder.is_dir():
        missing = "is not a folder" if folder.exists() else "does not exist"
        raise StoreError(
            f"the folder '{folder}' {missing}. Create it first (mkdir -p {folder}) or choose "
            "another path; bankwx never creates folders."
        )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConflictError(f"'{path}' already exists. Choose a new file name.") from None
    except OSError as exc:
        raise StoreError(
            f"cannot create {what} '{path}' ({exc.strerror or exc}). Choose a folder this "
            "user may write."
        ) from None
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def read_only_reason(path: Path) -> str | None:
    """Why the store at path cannot be written by this process, or None when it can."""
    if not os.access(path, os.W_OK):
        return "its file is not writable"
    if not os.access(path.parent, os.W_OK):
        return "its folder is not writable"
    return None


def open_store(
    path: Path,
    *,
    create: bool = False,
    key: Callable[[], MasterKey] | None = None,
    read_only: bool = False,
) -> Store:
    """Open (or, with create, make) the store at path and apply missing migrations.

    key returns the master key, for the values the store keeps sealed; it is called when one
    is first sealed or opened.

    A store whose file or folder this process cannot write is opened read-only: reads work,
    a write raises StoreError saying the store is read-only. A new store's file (and so its
    WAL and shared memory, which SQLite makes with the file's mode) is readable by its owner
    only; create never makes folders.

    ``read_only``: open it read-only even when it could be written (a backup being checked).

    Raises StoreError when the file is missing (and not create), a directory, not a bankwx
    store, newer than this code, or read-only and older than it.
    """
    if path.is_dir():
        raise StoreError(
            f"'{path}' is a directory, not a store. Give --db the store's file "
            f"(e.g. {path / 'bankwx.db'})."
        )
    if not create and not path.exists():
        raise StoreError(f"no store at {path}. Run bankwx init.")
    if create:
        create_private(path, "the store")
    reason = None if create else read_only_reason(path)
    if read_only and reason is None:
        reason = "opened read-only"
    db: Database | None = None
    try:
        db = Database(path, read_only=reason)
        if reason is None:
            migrations.apply(db)
        else:
            migrations.check_current(db)
    except sqlite3.DatabaseError as exc:
        if db is not None:
            db.close()
        if create:
            path.unlink(missing_ok=True)
        code = getattr(exc, "sqlite_errorcode", 0) or 0
        if code & 0xFF == 26 or "no such table" in str(exc):  # SQLITE_NOTADB, or not ours
            raise StoreError(f"'{path}' is not a bankwx store ({exc}).") from None
        if is_read_only_error(exc):
            raise read_only_error(path, reason) from None
        raise StoreError(f"cannot open the store at {path} ({exc}).") from None
    except BaseException:
        if db is not None:
            db.close()
        if create:
            path.unlink(missing_ok=True)
        raise
    return Store(db, Sealer(key))
