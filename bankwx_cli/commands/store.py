"""Top-level store commands: `bankwx init`, `audit`, `backup`, `check`; `bankwx store set`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bankwx_cli.clock import parse_user_time
from bankwx_cli.commands._cli import FormatOption, complete_operator, get_cli, limit_option
from bankwx_cli.domain import audit as audit_domain
from bankwx_cli.domain import stores
from bankwx_cli.errors import FAILED

store_app = typer.Typer(help="The store's own settings: identity.", no_args_is_help=True)


class IdentityMode(StrEnum):
    declared = "declared"
    os = "os"


class StoreSetting(StrEnum):
    identity = "identity"


def init(
    ctx: typer.Context,
    admin: Annotated[
        str | None,
        typer.Option("--admin", help="First administrator (default: the acting operator)."),
    ] = None,
    identity: Annotated[
        IdentityMode,
        typer.Option(
            "--identity",
            help="Who may act as which operator: os (the operator mapped to the login user; "
            "the administrator is mapped to yours) or declared (BANKWX_OPERATOR, as claimed).",
        ),
    ] = IdentityMode.declared,
) -> None:
    """Create the store and the master key; the acting operator becomes an administrator.

    Examples:

      bankwx init

      bankwx --db /srv/bankwx/bankwx.db init --admin ops-lead --identity os
    """
    cli = get_cli(ctx)
    result = stores.init(cli.app, admin, identity.value)
    cli.say(f"Created the store at {result.db}; '{result.admin}' is an administrator.")
    if result.os_user is not None:
        cli.say(
            f"Identity os: '{result.admin}' is the login user '{result.os_user}'; map each "
            "other operator to its login user with bankwx operator add NAME --os-user USER."
        )
    if result.created_key_file:
        cli.say(
            f"Created the master key file {result.key_source} (mode 600). Back it up: "
            "without it the store's secrets cannot be read."
        )
    else:
        cli.say(f"Using the master key from {result.key_source}.")


def audit(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", help="From this time (ISO 8601; Asia/Shanghai).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Before this time.")] = None,
    operator: Annotated[
        str | None,
        typer.Option("--operator", help="Only this operator.", autocompletion=complete_operator),
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Only this action, or group ('menu').")
    ] = None,
    limit: Annotated[int | None, limit_option("At most N rows.")] = None,
    fmt: FormatOption = None,
    oldest_first: Annotated[
        bool,
        typer.Option("--oldest-first", help="Oldest entries first (--limit: the oldest N)."),
    ] = False,
) -> None:
    """Show the audit log: who changed what, when, with what outcome.

    Each entry names the operator, the login (operating-system) user and the host. Newest
    first; --limit N shows the newest N, --oldest-first reverses.

    Examples:

      bankwx audit --since 2026-11-01 --operator alice

      bankwx audit --action account --format json

      bankwx audit --limit 20
    """
    cli = get_cli(ctx)
    entries = audit_domain.query(
        cli.app,
        since=parse_user_time(since, "--since") if since else None,
        until=parse_user_time(until, "--until") if until else None,
        operator=operator,
        action=action,
        limit=limit,
        oldest_first=oldest_first,
    )
    columns = ["id", "at", "operator", "os_user", "host", "action", "target", "params", "outcome"]
    cli.render(entries, fmt=fmt, columns=columns)


def backup(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The copy to create (must not exist).")],
    fmt: FormatOption = None,
) -> None:
    """Make an online, consistent copy of the store, safe while the receiver writes.

    The copy is readable by its owner only (mode 600). With --format json, one object: path,
    size (bytes), tables, rows, rows_by_table.

    Examples:

      bankwx backup /backup/bankwx-2026-11-25.db

      bankwx --db /srv/bankwx.db backup copy.db && bankwx --db copy.db check

      bankwx backup copy.db --format json
    """
    cli = get_cli(ctx)
    result = stores.backup(cli.app, file)
    cli.render_one(
        result.to_json(),
        fmt=fmt,
        say=f"Backed up the store to {file} ({result.size} bytes, "
        f"{sum(result.rows.values())} rows in {len(result.rows)} tables).",
    )


def check(
    ctx: typer.Context,
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Seal stored replies and outbox payloads found in clear; drop those that do "
            "not open with the master key (administrators).",
        ),
    ] = False,
    fmt: FormatOption = None,
) -> None:
    """Check the store: file integrity, master key fingerprint, audit chain, and that stored
    replies and outbox payloads are sealed with the master key.

    Exits 1 when anything is wrong, naming it (and the table). Warns, and still exits 0, when
    others can read the store's files (--fix makes them mode 600) and when the store's identity
    is declared (see bankwx store set identity).

    Examples:

      bankwx check

      bankwx --db copy.db check --format json

      bankwx check --fix
    """
    cli = get_cli(ctx)
    report = stores.check(cli.app, fix=fix)
    said = [f"checked: {line}" for line in report.checked]
    said += [f"WARNING: {warning}" for warning in report.warnings]
    said += [f"PROBLEM: {problem}" for problem in report.problems]
    said.append("Store OK." if report.ok else f"{len(report.problems)} problem(s) found.")
    cli.render_one(
        {
            "ok": report.ok,
            "problems": report.problems,
            "checked": report.checked,
            "warnings": report.warnings,
        },
        fmt=fmt,
        say="\n".join(said),
    )
    if not report.ok:
        raise typer.Exit(FAILED)


@store_app.command(
    "set",
    epilog="Examples:\n\n  bankwx store set identity os\n\n  bankwx store set identity declared",
)
def set_(
    ctx: typer.Context,
    setting: Annotated[StoreSetting, typer.Argument(help="The setting: identity.")],
    value: Annotated[
        IdentityMode,
        typer.Argument(
            help="identity: os (the operator mapped to the login user acts) or declared "
            "(BANKWX_OPERATOR, as claimed)."
        ),
    ],
) -> None:
    """Change a setting of the store (administrators with every account; audited).

    identity os: each command acts as the operator mapped to the login user (bankwx operator
    update NAME --os-user USER), so maker-checker means two people; map your own login user
    first. identity declared: BANKWX_OPERATOR is taken as claimed.
    """
    cli = get_cli(ctx)
    before = stores.set_identity(cli.app, value.value)
    cli.say(f"The store's identity is now '{value.value}' (was '{before}').")


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(audit)
    app.command()(backup)
    app.command()(check)
