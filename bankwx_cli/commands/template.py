"""`bankwx template ...`: the account's template messages, as WeChat lists them."""

from __future__ import annotations

from typing import Annotated

import typer

from bankwx_cli.commands._cli import AccountOption, FormatOption, get_cli
from bankwx_cli.domain import templates

app = typer.Typer(help="Template messages: sync from WeChat, list, show.", no_args_is_help=True)


@app.command(epilog="Examples:\n\n  bankwx template sync --account main")
def sync(ctx: typer.Context, account: AccountOption = None, fmt: FormatOption = None) -> None:
    """Pull the account's templates from WeChat into the store."""
    cli = get_cli(ctx)
    rows = templates.sync(cli.app, cli.with_account(account))
    cli.render(rows, fmt=fmt, columns=["template_id", "title"])
    cli.say(f"Synced {len(rows)} templates.")


@app.command("list", epilog="Examples:\n\n  bankwx template list --format json")
def list_(ctx: typer.Context, account: AccountOption = None, fmt: FormatOption = None) -> None:
    """List the synced templates."""
    cli = get_cli(ctx)
    rows = templates.list_(cli.app, cli.with_account(account))
    cli.render(rows, fmt=fmt, columns=["template_id", "title", "synced_at"])


@app.command(epilog="Examples:\n\n  bankwx template show TEMPLATE_ID")
def show(
    ctx: typer.Context,
    template_id: Annotated[str, typer.Argument(metavar="ID", help="Template id.")],
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Show a template's content, the data fields it needs and each field's type (a `thing`
    takes 20 characters at most, ...); `first` and `remark` are never required."""
    cli = get_cli(ctx)
    record = templates.show(cli.app, template_id, cli.with_account(account))
    shown = record.to_json()
    if cli.fmt(fmt) != "json":
        shown["field_rules"] = [r.describe() for r in record.field_rules]
    cli.render_one(shown, fmt=fmt)
