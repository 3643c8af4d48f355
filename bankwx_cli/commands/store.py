"""Top-level store commands: `bankwx init`, `audit`, `backup`, `check`."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from bankwx_cli.clock import parse_user_time
from bankwx_cli.commands._cli import FormatOption, complete_operator, get_cli, limit_option
from bankwx_cli.domain import audit as audit_domain
from bankwx_cli.domain import stores
from bankwx_cli.errors import FAILED


def init(
    ctx: typer.Context,
    admin: Annotated[
        str | None,
        typer.Option("--admin", help="First administrator (default: the acting operator)."),
    ] = None,
) -> None:
    """Create the store and the master key; the acting operator becomes an administrator.

    Examples:

      bankwx init

      bankwx --db /srv/bankwx/bankwx.db init --admin ops-lead
    """
    cli = get_cli(ctx)
    result = stores.init(cli.app, admin)
    cli.say(f"Created the store at {result.db}; '{result.admin}' is an administrator.")
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
) -> None:
    """Show the audit log: who changed what, when, with what outcome.

    Examples:

      bankwx audit --since 2026-11-01 --operator alice

      bankwx audit --action account --format json
    """
    cli = get_cli(ctx)
    entries = audit_domain.query(
        cli.app,
        since=parse_user_time(since, "--since") if since else None,
        until=parse_user_time(until, "--until") if until else None,
        operator=operator,
        action=action,
        limit=limit,
    )
    rows = [{k: v for k, v in asdict(e).items() if k not in ("prev_hash",)} for e in entries]
    cli.render(
        rows, fmt=fmt, columns=["id", "at", "operator", "action", "target", "params", "outcome"]
    )


def backup(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The copy to create (must not exist).")],
) -> None:
    """Make an online, consistent copy of the store, safe while the receiver writes.

    Examples:

      bankwx backup /backup/bankwx-2026-11-25.db

      bankwx --db /srv/bankwx.db backup copy.db && bankwx --db copy.db check
    """
    cli = get_cli(ctx)
    stores.backup(cli.app, file)
    cli.say(f"Backed up the store to {file}.")


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

    Exits 1 when anything is wrong, naming it (and the table).

    Examples:

      bankwx check

      bankwx --db copy.db check --format json

      bankwx check --fix
    """
    cli = get_cli(ctx)
    report = stores.check(cli.app, fix=fix)
    said = [f"checked: {line}" for line in report.checked]
    said += [f"PROBLEM: {problem}" for problem in report.problems]
    said.append("Store OK." if report.ok else f"{len(report.problems)} problem(s) found.")
    cli.render_one(
        {"ok": report.ok, "problems": report.problems, "checked": report.checked},
        fmt=fmt,
        say="\n".join(said),
    )
    if not report.ok:
        raise typer.Exit(FAILED)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(audit)
    app.command()(backup)
    app.command()(check)
