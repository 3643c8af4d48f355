"""The store as a whole: creation, online backup and the integrity check (with sealing at rest)."""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bankwx_cli import __version__
from bankwx_cli.clock import iso
from bankwx_cli.domain import audit, operators
from bankwx_cli.domain.permissions import require
from bankwx_cli.errors import ConflictError, KeyError_, StoreError
from bankwx_cli.storage import SQLITE_HEADER, open_store

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.keys import MasterKey


@dataclass
class InitResult:
    db: Path
    admin: str
    key_source: str
    created_key_file: bool
    identity: str = "declared"
    os_user: str | None = None  # identity os: the login user the administrator is mapped to


def _refuse_db_path(db: Path) -> None:
    """init's checks of the store's path, before anything is made (each its own message)."""
    if db.is_dir():
        raise ConflictError(
            f"'{db}' is a directory. Give --db a file name inside it (e.g. {db / 'bankwx.db'}). "
            "Nothing was changed."
        )
    if db.exists():
        with db.open("rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
        if header == SQLITE_HEADER:
            raise ConflictError(f"a store exists at {db}. Nothing was changed.")
        raise ConflictError(
            f"'{db}' exists and is not a SQLite file. Give --db a new file name; init never "
            "overwrites a file. Nothing was changed."
        )
    folder = db.parent
    if not folder.is_dir():
        missing = "is not a folder" if folder.exists() else "does not exist"
        raise StoreError(
            f"the folder '{folder}' {missing}. Create it first (mkdir -p {folder}) or give "
            "--db a path in an existing folder; init never creates folders."
        )
    if not os.access(folder, os.W_OK):
        raise StoreError(
            f"cannot create the store in '{folder}': the folder is not writable by this user. "
            "Give --db a path in a folder you may write."
        )


def init(app: AppContext, admin: str | None = None, identity: str = "declared") -> InitResult:
    """Create the store (and the key file when no key is configured); admin becomes admin.

    ``identity``: the store's identity mode ('declared' or 'os'); in 'os' mode the first
    administrator is mapped to the login user. Nothing is left behind when init fails.

    Raises ConflictError when the path is a directory, an existing file or store; StoreError
    when its folder is missing or not writable; KeyError_ for an unusable key file.
    """
    from bankwx_cli.domain import identity as identities
    from bankwx_cli.keys import create_key_file, load_key  # here: cryptography is slow to load

    identities.validate_mode(identity)
    settings = app.settings
    _refuse_db_path(settings.db)
    name = admin or settings.operator
    operators.validate_operator_name(name)
    created = False
    key_path = settings.key_file.expanduser()
    if app._key is not None:
        key, source = app._key, "given"
    elif settings.master_key:
        key, source = load_key(settings.master_key, settings.key_file), "BANKWX_MASTER_KEY"
    elif key_path.exists() or key_path.is_dir():
        key, source = load_key(None, settings.key_file), str(key_path)
    else:
        key, created = create_key_file(settings.key_file), True
        source = str(key_path)
    try:
        store = open_store(settings.db, create=True, key=lambda: app.key)
    except BaseException:
        if created:
            key_path.unlink(missing_ok=True)
        raise
    app._store = store
    app._key = key
    os_user = identities.os_login_user() if identity == "os" else None
    try:
        with store.transaction():
            store.set_meta("key_fingerprint", key.fingerprint)
            store.set_meta("created_at", iso(app.clock.now()))
            store.set_meta("created_by_version", __version__)
            store.set_meta(identities.META_KEY, identity)
        app.forget_identity()
        operators.bootstrap_admin(app, name, os_user)
    except BaseException:
        app.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{settings.db}{suffix}").unlink(missing_ok=True)
        if created:
            key_path.unlink(missing_ok=True)
        raise
    app.forget_identity()
    return InitResult(settings.db, name, source, created, identity, os_user)


@dataclass
class BackupResult:
    path: Path
    size: int
    rows: dict[str, int]

    def to_json(self) -> dict[str, object]:
        """The shape of ``bankwx backup --format json``."""
        return {
            "path": str(self.path.resolve()),
            "size": self.size,
            "tables": len(self.rows),
            "rows": sum(self.rows.values()),
            "rows_by_table": self.rows,
        }


def backup(app: AppContext, target: Path) -> BackupResult:
    """An online, consistent copy of the store, readable by its owner only.

    Raises ConflictError if target exists (or is a directory), StoreError when its folder is
    missing or not writable; nothing is left behind then."""
    require(app, "store.backup")
    if target.exists():
        raise ConflictError(f"'{target}' already exists. Choose a new file name.")
    copy = app.store.backup(target)
    if not app.store.read_only:
        with app.store.transaction():
            audit.record(app, "store.backup", str(target), {})
    return BackupResult(copy.path, copy.size, copy.rows)


def set_identity(app: AppContext, mode: str) -> str:
    """Set the store's identity mode ('os' or 'declared'); administrators with every account
    only, audited. Switching to 'os' needs the login user to be mapped to the acting
    administrator, so that whoever switches can still administer the store afterwards.

    Returns the previous mode. Raises ValidationError, PermissionDenied, ConflictError."""
    from bankwx_cli.domain import identity as identities

    identities.validate_mode(mode)
    require(app, "store.identity")
    who = app.identity
    if mode == "os" and app.store.os_users.operator_of(who.os_user) != who.operator:
        raise ConflictError(
            f"login user '{who.os_user}' is not mapped to operator '{who.operator}': with "
            "identity os you could no longer administer the store. Map it first: bankwx "
            f"operator update {who.operator} --os-user {who.os_user}"
        )
    with app.store.transaction():
        before = identities.store_mode(app)
        app.store.set_meta(identities.META_KEY, mode)
        audit.record(app, "store.identity", str(app.store.path), {"from": before, "to": mode})
    app.forget_identity()
    return before


def identity_warning(app: AppContext) -> str | None:
    """The warning ``bankwx check`` and ``bankwx serve`` give about a store in 'declared'
    identity mode (None in 'os' mode)."""
    from bankwx_cli.domain.identity import store_mode

    if store_mode(app) == "os":
        return None
    return (
        "identity is 'declared': anyone who can run bankwx on this store may act as any "
        "operator by setting BANKWX_OPERATOR. Require real identity: map operators to login "
        "users (bankwx operator update NAME --os-user USER), then: bankwx store set identity os"
    )


def readable_by_others(path: Path) -> list[str]:
    """The store's files (file, WAL, shared memory) that others may read, with their modes."""
    found = []
    for suffix in ("", "-wal", "-shm"):
        file = Path(f"{path}{suffix}")
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except OSError:
            continue
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            found.append(f"{file} (mode {mode:o})")
    return found


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # worth fixing, not a failed check

    @property
    def ok(self) -> bool:
        return not self.problems


def check(app: AppContext, fix: bool = False) -> CheckReport:
    """Integrity of the file, the master key's fingerprint, the audit chain, and the values
    kept sealed at rest (stored replies, outbox payloads).

    With fix, values found in clear are sealed, and sealed values that do not open with the
    key are dropped (a stored reply; a finished unit's payload) before they are counted.
    """
    require(app, "store.check")
    if fix:
        require(app, "store.fix")
    report = CheckReport()
    report.problems += app.store.integrity_problems()
    report.checked.append(f"file integrity ({app.store.path})")
    try:
        key: MasterKey = app.key
        report.checked.append(f"master key fingerprint {key.fingerprint}")
    except KeyError_ as exc:
        report.problems.append(str(exc))
    else:
        if fix:
            _mend_sealing(app, report)
        _check_sealing(app, report)
    report.problems += app.store.audit.verify()
    count = len(app.store.audit.all())
    report.checked.append(f"audit chain ({count} rows)")
    report.checked.append(f"schema version {app.store.schema_version()}")
    open_to_others = readable_by_others(app.store.path)
    if open_to_others and fix:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{app.store.path}{suffix}").chmod(0o600)
        report.checked.append(f"fixed file modes (now 600): {', '.join(open_to_others)}")
        open_to_others = readable_by_others(app.store.path)
    if open_to_others:
        report.warnings.append(
            f"others can read the store's files: {', '.join(open_to_others)}; they hold openids "
            f"and the conversation log. Run: chmod 600 {app.store.path}*"
        )
    report.checked.append("file modes")
    warning = identity_warning(app)
    if warning is not None:
        report.warnings.append(warning)
    report.checked.append(f"identity {'declared' if warning else 'os'}")
    return report


def _check_sealing(app: AppContext, report: CheckReport) -> None:
    for census in app.store.sealing_census():
        where = f"table {census.table} ({census.column})"
        report.checked.append(f"sealed at rest: {where}")
        if census.clear:
            report.problems.append(
                f"{where}: {census.clear} value(s) stored in clear, not sealed with the master "
                "key. Run: bankwx check --fix"
            )
        if census.unreadable:
            effect = (
                "a stored reply is answered as absent"
                if census.table == "messages"
                else "a pending unit fails without being sent"
            )
            report.problems.append(
                f"{where}: {census.unreadable} sealed value(s) do not open with this master key "
                f"({effect}). Run: bankwx check --fix to drop them"
            )


def _mend_sealing(app: AppContext, report: CheckReport) -> None:
    mended = app.store.mend_sealing()
    for table, (sealed, dropped) in mended.items():
        report.checked.append(f"fixed table {table}: sealed {sealed}, dropped {dropped}")
    with app.store.transaction():
        audit.record(
            app,
            "store.fix",
            str(app.store.path),
            {t: {"sealed": s, "dropped": d} for t, (s, d) in mended.items()},
        )
