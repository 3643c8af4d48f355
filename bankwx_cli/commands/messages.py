"""`bankwx messages ...`: the conversation log (masked)."""

from __future__ import annotations

from typing import Annotated

import typer

from bankwx_cli.clock import parse_user_time
from bankwx_cli.commands._cli import (
    AccountOption,
    DryRunOption,
    FormatOption,
    YesOption,
    get_cli,
    limit_option,
)
from bankwx_cli.domain import messages

app = typer.Typer(help="The conversation log: list, purge, export.", no_args_is_help=True)

COLUMNS = [
    "at",
    "account",
    "openid",
    "direction",
    "msg_type",
    "content",
    "route",
    "outcome",
    "handling_ms",
    "deliveries",
]


@app.command(
    "list",
    epilog="Examples:\n\n  bankwx messages list --since 2026-11-25 --limit 20\n\n"
    "  bankwx messages list --openid o6_bmjrPTlm6_2sgVt7hMZOPfL2M --format json",
)
def list_(
    ctx: typer.Context,
    openid: Annotated[str | None, typer.Option("--openid", help="One follower.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="From (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Before (ISO 8601).")] = None,
    limit: Annotated[int, limit_option("At most N entries.")] = 100,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """List log entries, newest first (card, phone and ID numbers masked)."""
    cli = get_cli(ctx)
    rows = messages.list_(
        cli.app,
        account=cli.with_account(account),
        openid=openid,
        since=parse_user_time(since, "--since") if since else None,
        until=parse_user_time(until, "--until") if until else None,
        limit=limit,
    )
    cli.render(rows, fmt=fmt, columns=COLUMNS)


@app.command(
    epilog="Examples:\n\n  bankwx messages purge --yes\n\n"
    "  bankwx messages purge --before 2026-06-01 --account main --yes"
)
def purge(
    ctx: typer.Context,
    before: Annotated[
        str | None,
        typer.Option("--before", help="Delete entries before this time (default: retention)."),
    ] = None,
    account: AccountOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    fmt: FormatOption = None,
) -> None:
    """Delete entries older than the retention period (180 days by default, per account)."""
    cli = get_cli(ctx)
    cutoff = parse_user_time(before, "--before") if before else None
    acct = cli.with_account(account)
    if not dry_run:
        cli.confirm("Delete conversation log entries?", yes=yes)
    cli.render(messages.purge(cli.app, cutoff, acct, dry_run=dry_run), fmt=fmt)


@app.command(
    epilog="Examples:\n\n  bankwx messages export --openid o6_bmjrPTlm6_2sgVt7hMZOPfL2M "
    "--format json > export.json"
)
def export(
    ctx: typer.Context,
    openid: Annotated[str, typer.Option("--openid", help="The follower.")],
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Export one follower's entries, oldest first (a customer's request under PIPL)."""
    cli = get_cli(ctx)
    rows = messages.export(cli.app, openid, cli.with_account(account))
    cli.render(rows, fmt=fmt or "json", columns=COLUMNS)
