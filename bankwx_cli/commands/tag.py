"""`bankwx tag ...`: the account's follower tags, kept in step with WeChat."""

from __future__ import annotations

from typing import Annotated

import typer

from bankwx_cli.commands._cli import (
    AccountOption,
    DryRunOption,
    FormatOption,
    YesOption,
    get_cli,
)
from bankwx_cli.domain import tags
from bankwx_cli.models.followers import TagChange

app = typer.Typer(
    help="Follower tags: list (with counts), create, rename, delete.",
    no_args_is_help=True,
)

COLUMNS = ["id", "name", "count", "system"]
NameArgument = Annotated[str, typer.Argument(help="Tag name (30 characters at most).")]


def _done(ctx: typer.Context, change: TagChange, fmt: FormatOption) -> None:
    get_cli(ctx).render_one(change, fmt=fmt, say=change.headline(done=True))


@app.command(
    "list",
    epilog="Examples:\n\n  bankwx tag list\n\n  bankwx tag list --cached --format json",
)
def list_(
    ctx: typer.Context,
    cached: Annotated[
        bool, typer.Option("--cached", help="Show the store's copy; do not ask WeChat.")
    ] = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """List the account's tags with WeChat's follower count of each.

    The list comes from WeChat and is saved in the store (--cached shows the saved copy).
    System tags (ids 0 to 2, such as 星标组) cannot be renamed or deleted.
    """
    cli = get_cli(ctx)
    rows = tags.list_(cli.app, cli.with_account(account), cached)
    cli.render(rows, fmt=fmt, columns=COLUMNS, empty="No tags.")


@app.command(
    epilog="Examples:\n\n  bankwx tag create VIP\n\n  bankwx tag create 2026春节 --dry-run"
)
def create(
    ctx: typer.Context,
    name: NameArgument,
    dry_run: DryRunOption = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Create a tag on WeChat (100 at most, names of 30 characters at most, unique)."""
    cli = get_cli(ctx)
    if dry_run:
        change = tags.plan_create(cli.app, cli.with_account(account), name)
        cli.say(change.headline(done=False))
        return
    _done(ctx, tags.create(cli.app, cli.with_account(account), name), fmt)


@app.command(epilog="Examples:\n\n  bankwx tag rename VIP 'VIP客户'")
def rename(
    ctx: typer.Context,
    old: Annotated[str, typer.Argument(help="The tag's current name.")],
    new: Annotated[str, typer.Argument(help="Its new name.")],
    dry_run: DryRunOption = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Rename a tag on WeChat; its followers keep it."""
    cli = get_cli(ctx)
    if dry_run:
        change = tags.plan_rename(cli.app, cli.with_account(account), old, new)
        cli.say(change.headline(done=False))
        return
    _done(ctx, tags.rename(cli.app, cli.with_account(account), old, new), fmt)


@app.command(epilog="Examples:\n\n  bankwx tag delete 2025中秋 --yes")
def delete(
    ctx: typer.Context,
    name: NameArgument,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Delete a tag on WeChat; WeChat takes it from every follower who holds it.

    WeChat refuses to delete a tag with more than 100,000 followers (exit 3).
    """
    cli = get_cli(ctx)
    change = tags.plan_delete(cli.app, cli.with_account(account), name)
    if dry_run:
        cli.say(change.headline(done=False))
        return
    cli.confirm(
        f"Delete tag '{change.name}' from '{change.account}' and untag its "
        f"{change.members:,} followers?",
        yes=yes,
    )
    _done(ctx, tags.delete(cli.app, change.account, name), fmt)
