"""`bankwx follower ...`: followers synced from WeChat, their tags and the blacklist."""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated

import typer

from bankwx_cli.commands._cli import (
    AccountOption,
    Cli,
    DryRunOption,
    FormatOption,
    YesOption,
    checked,
    get_cli,
    limit_option,
)
from bankwx_cli.domain import alert_preferences, bank, follower_batches, follower_sync, followers

app = typer.Typer(
    help="Followers: sync from WeChat, list, show, tag, untag, block, unblock.",
    no_args_is_help=True,
)

LIST_COLUMNS = ["openid", "subscribed", "subscribe_at", "subscribe_scene", "tags", "blacklisted"]
PLAN_COLUMNS = ["batch", "call", "tag", "openids", "first", "last"]


class YesNo(StrEnum):
    yes = "yes"
    no = "no"


OpenidsArgument = Annotated[
    list[str] | None,
    typer.Argument(help="Openids (28 characters each); with --from, added to the file's."),
]
TagOption = Annotated[str | None, typer.Option("--tag", help="Tag name (see bankwx tag list).")]
MembersArgument = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="TAG|OPENID",
        help="With --from and no --tag: the tag, then any openids; else the openids "
        "(28 characters each).",
        show_default=False,
    ),
]
FromOption = Annotated[
    str | None,
    typer.Option(
        "--from",
        metavar="FILE",
        help="Openids from a file, one a line ('-': standard input); blank lines and # "
        "comments are skipped, repeats counted once.",
    ),
]


@app.command(
    epilog="Examples:\n\n  bankwx follower sync --account main\n\n"
    "  bankwx follower sync --full --profile-max-age 30d\n\n"
    "  bankwx follower sync --format json   # cron: the report as JSON"
)
def sync(
    ctx: typer.Context,
    full: Annotated[
        bool,
        typer.Option("--full", help="A complete pass of the follower list (finds unsubscribes)."),
    ] = False,
    profile_max_age: Annotated[
        str,
        typer.Option(
            "--profile-max-age",
            help="Refetch profiles older than this (30m, 12h, 7d; 0 refetches all).",
        ),
    ] = follower_sync.DEFAULT_PROFILE_MAX_AGE,
    full_every: Annotated[
        str,
        typer.Option(
            "--full-every",
            help="Make a complete pass when the last one is older than this (e.g. 1d).",
        ),
    ] = follower_sync.DEFAULT_FULL_EVERY,
    threads: Annotated[
        int,
        typer.Option(
            "--threads",
            help="Profile requests in flight at once.",
            min=1,
            max=follower_sync.MAX_THREADS,
        ),
    ] = follower_sync.DEFAULT_THREADS,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Pull the follower list and profiles from WeChat into the store.

    Pages of 10,000 openids, then profiles 100 a call for new followers and those whose
    profile is older than --profile-max-age. An interrupted sync (killed, or WeChat's daily
    quota used up) resumes where it stopped when run again. A complete pass, the first one,
    one with --full, or one when the last is older than --full-every, also finds who
    unsubscribed; otherwise the pass continues after the last follower seen.
    """
    cli = get_cli(ctx)
    report = follower_sync.sync(
        cli.app,
        cli.with_account(account),
        full=full,
        profile_max_age=profile_max_age,
        full_every=full_every,
        threads=threads,
        progress=cli.progress,
    )
    cli.render_one(report, fmt=fmt, say=report.summary())


@app.command(epilog="Examples:\n\n  bankwx follower status --account main")
def status(ctx: typer.Context, account: AccountOption = None, fmt: FormatOption = None) -> None:
    """Show the last (or the interrupted) sync pass and the store's follower counts."""
    cli = get_cli(ctx)
    cli.render_one(follower_sync.sync_status(cli.app, cli.with_account(account)), fmt=fmt)


@app.command(
    "list",
    epilog="Examples:\n\n  bankwx follower list --tag VIP --subscribed yes\n\n"
    "  bankwx follower list --scene QR_CODE --since 2026-01-01 --format json\n\n"
    "  bankwx follower list --subscribed no --format csv > unsubscribed.csv",
)
def list_(
    ctx: typer.Context,
    tag: Annotated[str | None, typer.Option("--tag", help="Only followers with this tag.")] = None,
    subscribed: Annotated[
        YesNo | None, typer.Option("--subscribed", help="yes: subscribed only; no: the others.")
    ] = None,
    scene: Annotated[
        str | None,
        typer.Option(
            "--scene",
            help="Subscribe scene, e.g. ADD_SCENE_QR_CODE or QR_CODE.",
            callback=checked(followers.check_scene),
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Subscribed at or after (ISO 8601; Asia/Shanghai)."),
    ] = None,
    blacklisted: Annotated[
        YesNo | None, typer.Option("--blacklisted", help="yes: blacklisted only; no: others.")
    ] = None,
    limit: Annotated[int | None, limit_option("At most N followers.")] = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """List followers from the store, in follow order.

    The engine's subscribe and unsubscribe events since the last sync are taken into
    account. Keys in JSON: openid, subscribed, subscribe_at, subscribe_scene, tags, tag_ids,
    blacklisted, remark.
    """
    cli = get_cli(ctx)
    rows = followers.list_(
        cli.app,
        cli.with_account(account),
        tag=tag,
        subscribed=None if subscribed is None else subscribed == YesNo.yes,
        scene=scene,
        since=since,
        blacklisted=None if blacklisted is None else blacklisted == YesNo.yes,
        limit=limit,
    )
    cli.render(rows, fmt=fmt, columns=LIST_COLUMNS, empty="No followers match.")


@app.command(
    epilog="Examples:\n\n  bankwx follower show oXbc1234567890abcdefghijklmn\n\n"
    "  bankwx follower show oXbc1234567890abcdefghijklmn --refresh --format json"
)
def show(
    ctx: typer.Context,
    openid: Annotated[str, typer.Argument(help="The follower's openid.")],
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Fetch the profile from WeChat first.")
    ] = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Show one follower: subscription, profile, tags, blacklist, where it came from, and
    the bank customer it is bound to (the card by its last four digits only)."""
    cli = get_cli(ctx)
    record = followers.show(cli.app, cli.with_account(account), openid, refresh)
    binding = followers.binding(cli.app, cli.with_account(account), openid)
    prefs = alert_preferences.of_follower(cli.app, cli.with_account(account), openid)
    shown = {**record.to_json(), "binding": binding.to_json() if binding else None}
    shown["alert_preferences"] = prefs.to_json()
    if cli.fmt(fmt) != "json":
        shown["binding"] = bank.describe(binding) if binding else ""
        shown["alert_preferences"] = prefs.describe()
    cli.render_one(shown, fmt=fmt)


@app.command(
    epilog="Examples:\n\n  bankwx follower bind oXbc1234567890abcdefghijklmn --customer C000001\n\n"
    "  bankwx follower bind oXbc1234567890abcdefghijklmn --customer C000001 --yes"
)
def bind(
    ctx: typer.Context,
    openid: Annotated[str, typer.Argument(help="The follower's openid.")],
    customer: Annotated[
        str, typer.Option("--customer", help="The bank's customer id.", show_default=False)
    ],
    yes: YesOption = False,
    account: AccountOption = None,
) -> None:
    """Bind a follower to a bank customer (moving bindings from an earlier platform).

    The back-end is asked for the customer's card (a debit card first); only its last four
    digits are kept. A follower has one customer: unbind first to change it. Audited.
    """
    cli = get_cli(ctx)
    acct = followers.account_for(cli.app, "binding.manage", cli.with_account(account))
    followers.check_openids([openid])
    customer = bank.check_customer_id(customer)
    found = bank.binding_of(cli.app, acct, openid)
    if found is not None and found.customer_id == customer:
        cli.say(f"Follower '{openid}' is already bound to {bank.describe(found)}.")
        return
    if found is not None:
        raise bank.bound_elsewhere(found)
    card = bank.customer_card(cli.app, customer)
    cli.confirm(
        f"Bind follower '{openid}' of account '{acct.name}' to customer {customer} "
        f"(card ****{card})?",
        yes,
    )
    done = bank.add_binding(cli.app, acct, openid, customer, card)
    cli.say(f"Bound follower '{openid}' to {bank.describe(done)}.")


@app.command(epilog="Examples:\n\n  bankwx follower unbind oXbc1234567890abcdefghijklmn --yes")
def unbind(
    ctx: typer.Context,
    openid: Annotated[str, typer.Argument(help="The follower's openid.")],
    yes: YesOption = False,
    account: AccountOption = None,
) -> None:
    """Remove a follower's binding to a bank customer. Audited."""
    cli = get_cli(ctx)
    acct = followers.account_for(cli.app, "binding.manage", cli.with_account(account))
    followers.check_openids([openid])
    found = bank.binding_of(cli.app, acct, openid)
    if found is None:
        cli.say(f"Follower '{openid}' of account '{acct.name}' is not bound; nothing to do.")
        return
    cli.confirm(f"Unbind follower '{openid}' from {bank.describe(found)}?", yes)
    removed = bank.remove_binding(cli.app, acct, openid)
    if removed is None:
        cli.say(f"Follower '{openid}' of account '{acct.name}' is not bound; nothing to do.")
        return
    cli.say(f"Unbound follower '{openid}' from {bank.describe(removed)}.")


def _members(
    cli: Cli,
    action: str,
    args: list[str] | None,
    account: str | None,
    dry_run: bool,
    fmt: FormatOption,
    tag: str | None = None,
    from_: str | None = None,
) -> None:
    openids = list(args or [])
    if from_ is not None:
        if action in ("tag", "untag") and tag is None and openids:
            tag = openids.pop(0)  # bankwx follower tag TAG --from FILE
        text = sys.stdin.read() if from_ == "-" else None
        openids += followers.read_openid_list(from_, text)
    if action in ("tag", "untag") and tag is None:  # a missing option: a usage error
        raise typer.BadParameter(
            f"give the tag: bankwx follower {action} TAG --from FILE, or OPENID... --tag TAG.",
            param_hint="'--tag'",
        )
    plan = follower_batches.plan(cli.app, cli.with_account(account), action, openids, tag)
    if dry_run:
        cli.render(plan.rows(), fmt=fmt, columns=PLAN_COLUMNS)
        cli.say(f"Dry run: {len(plan.batches)} calls; nothing was sent.")
        return
    report = follower_batches.apply(cli.app, plan, cli.progress)
    for failure in report.failures:
        cli.say(f"Error: {failure.message()}")
    cli.say(report.summary())
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def _tagging(action: str, doc: str) -> Callable[..., None]:
    """``follower tag`` or ``untag``: one signature, one body."""

    def command(
        ctx: typer.Context,
        args: MembersArgument = None,
        tag: TagOption = None,
        from_: FromOption = None,
        dry_run: DryRunOption = False,
        account: AccountOption = None,
        fmt: FormatOption = None,
    ) -> None:
        _members(get_cli(ctx), action, args, account, dry_run, fmt, tag, from_)

    command.__doc__ = doc
    return command


def _blacklisting(action: str, doc: str) -> Callable[..., None]:
    """``follower block`` or ``unblock``: one signature, one body."""

    def command(
        ctx: typer.Context,
        openids: OpenidsArgument = None,
        from_: FromOption = None,
        dry_run: DryRunOption = False,
        account: AccountOption = None,
        fmt: FormatOption = None,
    ) -> None:
        _members(get_cli(ctx), action, openids, account, dry_run, fmt, from_=from_)

    command.__doc__ = doc
    return command


tag = app.command(
    "tag",
    epilog="Examples:\n\n  bankwx follower tag oXbc1234567890abcdefghijklmn --tag VIP\n\n"
    "  bankwx follower tag VIP --from vip-openids.txt\n\n"
    "  bankwx follower list --subscribed yes --format csv | cut -d, -f1 | tail -n +2 | "
    "bankwx follower tag 2026春节 --from -",
)(
    _tagging(
        "tag",
        """Give followers a tag on WeChat, 50 a call (WeChat's maximum), and in the store.

    Name the followers as openids with --tag TAG, or list them in a file with TAG --from
    FILE ('-' for standard input); malformed lines are reported with their numbers and
    nothing is sent. Exits 3 when WeChat refused a batch (the others still go), after a
    summary line.
    """,
    )
)
untag = app.command(
    "untag",
    epilog="Examples:\n\n  bankwx follower untag oXbc1234567890abcdefghijklmn --tag VIP\n\n"
    "  bankwx follower untag VIP --from lapsed.txt --dry-run",
)(
    _tagging(
        "untag",
        """Take a tag from followers on WeChat, 50 a call, and in the store.

    Name the followers as openids with --tag TAG, or list them in a file with TAG --from
    FILE ('-' for standard input), as for follower tag.
    """,
    )
)
block = app.command(
    "block",
    epilog="Examples:\n\n  bankwx follower block oXbc1234567890abcdefghijklmn\n\n"
    "  bankwx follower block oXbc1234567890abcdefghijklmn --dry-run\n\n"
    "  bankwx follower block --from spammers.txt",
)(
    _blacklisting(
        "block",
        "Put followers on the account's WeChat blacklist, 20 a call; they can no longer write.",
    )
)
unblock = app.command(
    "unblock",
    epilog="Examples:\n\n  bankwx follower unblock oXbc1234567890abcdefghijklmn",
)(_blacklisting("unblock", "Take followers off the account's WeChat blacklist, 20 a call."))
