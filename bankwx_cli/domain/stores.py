"""The store as a whole: creation, online backup and the integrity check (with sealing at rest)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bankwx_cli import __version__
from bankwx_cli.clock import iso
from bankwx_cli.domain import audit, operators
from bankwx_cli.domain.permissions import require
from bankwx_cli.errors import ConflictError, KeyError_
from bankwx_cli.storage import open_store

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.keys import MasterKey


@dataclass
class InitResult:
    db: Path
    admin: str
    key_source: str
    created_key_file: bool


def init(app: AppContext, admin: str | None = None) -> InitResult:
    """Create the store (and the key file when no key is configured); admin becomes admin.

    Raises ConflictError when a store exists at the path.
    """
    from bankwx_cli.keys import create_key_file, load_key  # here: cryptography is slow to load

    settings = app.settings
    if settings.db.exists():
        raise ConflictError(f"a store exists at {settings.db}. Nothing was changed.")
    created = False
    if app._key is not None:
        key, source = app._key, "given"
    elif settings.master_key:
        key, source = load_key(settings.master_key, settings.key_file), "BANKWX_MASTER_KEY"
    elif settings.key_file.expanduser().exists():
        key, source = load_key(None, settings.key_file), str(settings.key_file.expanduser())
    else:
        key, created = create_key_file(settings.key_file), True
        source = str(settings.key_file.expanduser())
    store = open_store(settings.db, create=True, key=lambda: app.key)
    app._store = store
    app._key = key
    with store.transaction():
        store.set_meta("key_fingerprint", key.fingerprint)
        store.set_meta("created_at", iso(app.clock.now()))
        store.set_meta("created_by_version", __version__)
    name = admin or app.operator
    operators.bootstrap_admin(app, name)
    return InitResult(settings.db, name, source, created)


def backup(app: AppContext, target: Path) -> Path:
    """An online, consistent copy of the store. Raises ConflictError if target exists."""
    require(app, "store.backup")
    if target.exists():
        raise ConflictError(f"'{target}' already exists. Choose a new file name.")
    app.store.backup(target)
    with app.store.transaction():
        audit.record(app, "store.backup", str(target), {})
    return target


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

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
