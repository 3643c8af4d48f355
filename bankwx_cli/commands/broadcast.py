"""`bankwx broadcast ...`: mass communication with maker-checker approval."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bankwx_cli.clock import bank_time, from_iso, parse_user_time
from bankwx_cli.commands._cli import (
    AccountOption,
    Cli,
    Fmt,
    FormatOption,
    YesOption,
    complete_broadcast,
    get_cli,
    id_argument,
)
from bankwx_cli.domain import broadcasts
from bankwx_cli.models.batches import BatchReport
from bankwx_cli.models.broadcasts import Broadcast

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext

app = typer.Typer(
    help="Broadcasts: create, preview, submit, approve, send (now or by cron), track.",
    no_args_is_help=True,
)

IdArgument = Annotated[int, id_argument("Broadcast id (broadcast list).", complete_broadcast)]


class State(StrEnum):
    """A broadcast's states, for --state."""

    draft = "draft"
    submitted = "submitted"
    approved = "approved"
    rejected = "rejected"
    sending = "sending"
    sent = "sent"
    partly_failed = "partly_failed"
    failed = "failed"
    cancelled = "cancelled"


LIST_COLUMNS = [
    "id",
    "account",
    "state",
    "content_kind",
    "audience_kind",
    "audience_size",
    "scheduled_at",
    "created_by",
    "approved_by",
    "title",
]


def _show(cli: Cli, shown: Broadcast, fmt: Fmt | None, message: str | None = None) -> None:
    cli.render_one(shown, fmt=fmt, say=message, show=shown)
    if shown.allowance_warning:
        cli.warn(shown.allowance_warning)


@app.command(
    epilog="Examples:\n\n  bankwx broadcast create --text '国庆假期营业时间调整' --to-all\n\n"
    "  bankwx broadcast create --template TPL_ID --data @data.json --tag VIP "
    "--at 2026-12-01T09:30\n\n"
    "  bankwx broadcast create --news MEDIA_ID --filter scene=ADD_SCENE_QR_CODE"
)
def create(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Option("--text", help="A text message.")] = None,
    image: Annotated[str | None, typer.Option("--image", help="An image media id.")] = None,
    news: Annotated[str | None, typer.Option("--news", help="A news (draft) media id.")] = None,
    template: Annotated[
        str | None, typer.Option("--template", help="A template id (template list).")
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", help="Template data: JSON, or @FILE.")
    ] = None,
    to_all: Annotated[bool, typer.Option("--to-all", help="Every follower.")] = False,
    tag: Annotated[str | None, typer.Option("--tag", help="Followers with this tag.")] = None,
    openids: Annotated[
        Path | None,
        typer.Option(
            "--openids", help="A file of openids, one a line.", exists=True, dir_okay=False
        ),
    ] = None,
    filter_expr: Annotated[
        str | None,
        typer.Option("--filter", help="Synced followers: scene=..., since=..., until=..., tag=..."),
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Send at (ISO 8601; no offset = Asia/Shanghai).")
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="A title for operators.")] = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Create a draft broadcast: a content and an audience, optionally a time."""
    cli = get_cli(ctx)
    shown = broadcasts.create(
        cli.app,
        cli.with_account(account),
        text=text,
        image=image,
        news=news,
        template=template,
        data=data,
        to_all=to_all,
        tag=tag,
        openids_file=openids,
        filter_expr=filter_expr,
        at=parse_user_time(at, "--at") if at else None,
        title=title,
    )
    scheduled = shown.scheduled_for_people
    when = f", scheduled for {scheduled}" if scheduled else ""
    _show(
        cli,
        shown,
        fmt,
        f"Created broadcast {shown.id} ({shown.audience_size} "
        f"followers{when}). Next: bankwx broadcast submit {shown.id}.",
    )


@app.command(epilog="Examples:\n\n  bankwx broadcast edit 7 --text '更正后的内容'")
def edit(
    ctx: typer.Context,
    broadcast_id: IdArgument,
    text: Annotated[str | None, typer.Option("--text", help="New text.")] = None,
    at: Annotated[str | None, typer.Option("--at", help="New time (ISO 8601).")] = None,
    title: Annotated[str | None, typer.Option("--title", help="New title.")] = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Change a broadcast before it is sent; an approved one needs approval again."""
    cli = get_cli(ctx)
    shown = broadcasts.edit(
        cli.app,
        broadcast_id,
        text=text,
        title=title,
        at=parse_user_time(at, "--at") if at else None,
        account=cli.with_account(account),
    )
    _show(cli, shown, fmt, f"Broadcast {broadcast_id} is a draft again; submit it for approval.")


def _step(
    name: str,
    example: str,
    doc: str,
    act: Callable[[AppContext, int, str | None], Broadcast],
    said: Callable[[Broadcast], str],
) -> None:
    """A command that moves a broadcast one step (submit, approve, cancel) and shows it."""

    def command(
        ctx: typer.Context,
        broadcast_id: IdArgument,
        account: AccountOption = None,
        fmt: FormatOption = None,
    ) -> None:
        cli = get_cli(ctx)
        shown = act(cli.app, broadcast_id, cli.with_account(account))
        _show(cli, shown, fmt, said(shown))

    command.__doc__ = doc
    command.__name__ = name
    app.command(name, epilog=f"Examples:\n\n  {example}")(command)


_step(
    "submit",
    "bankwx broadcast submit 7",
    "Submit a draft for approval by another operator.",
    broadcasts.submit,
    lambda b: f"Broadcast {b.id} awaits approval.",
)
_step(
    "approve",
    "BANKWX_OPERATOR=bob bankwx broadcast approve 7",
    "Approve a submitted broadcast (never one you created).",
    broadcasts.approve,
    lambda b: (
        f"Approved broadcast {b.id}; it goes out "
        + (b.scheduled_for_people or "as soon as bankwx broadcast run-due (or send) runs")
        + "."
    ),
)


@app.command(epilog="Examples:\n\n  bankwx broadcast reject 7 --reason '金额有误'")
def reject(
    ctx: typer.Context,
    broadcast_id: IdArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the author.")],
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Reject a submitted broadcast, saying why."""
    cli = get_cli(ctx)
    shown = broadcasts.reject(cli.app, broadcast_id, reason, cli.with_account(account))
    _show(cli, shown, fmt, f"Rejected broadcast {broadcast_id}.")


_step(
    "cancel",
    "bankwx broadcast cancel 7",
    "Cancel a broadcast, also mid-send: what is not yet sent is not sent.",
    broadcasts.cancel,
    lambda b: f"Cancelled broadcast {b.id}.",
)


@app.command(epilog="Examples:\n\n  bankwx broadcast preview 7 --to o6_bmjrPTlm6_2sgVt7hMZOPfL2M")
def preview(
    ctx: typer.Context,
    broadcast_id: IdArgument,
    to: Annotated[str, typer.Option("--to", help="A test follower on the preview list.")],
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Send the broadcast to one test follower (the account's preview list only)."""
    cli = get_cli(ctx)
    result = broadcasts.preview(cli.app, broadcast_id, to, cli.with_account(account))
    cli.render_one(result, fmt=fmt, say=f"Sent a preview of broadcast {broadcast_id} to {to}.")


def _outcome(b: Broadcast) -> str:
    """A send's outcome for people: the state, and why it failed or when it is tried again."""
    if b.state == "approved" and b.retry_at:
        when = bank_time(from_iso(b.retry_at))
        return f"Broadcast {b.id}: not finished, tried again from {when} ({b.error})."
    if b.error:
        return f"Broadcast {b.id}: {b.state}: {b.error}"
    return f"Broadcast {b.id}: {b.state}."


def _report(cli: Cli, report: BatchReport) -> None:
    for failure in report.failures[:20]:
        cli.say(failure.message())
    cli.say(report.summary())
    if report.exit_code:
        raise typer.Exit(report.exit_code)


@app.command(epilog="Examples:\n\n  bankwx broadcast send 7 --yes")
def send(
    ctx: typer.Context,
    broadcast_id: IdArgument,
    yes: YesOption = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Send an approved broadcast now; returns when every unit is sent or finally failed.

    A run that was killed is finished by running the same command again.
    """
    cli = get_cli(ctx)
    shown = broadcasts.show_to_send(cli.app, broadcast_id, cli.with_account(account))
    cli.confirm(f"Send broadcast {broadcast_id} to {shown.audience_size} followers now?", yes=yes)
    result, report = broadcasts.send(cli.app, broadcast_id, cli.with_account(account), cli.progress)
    cli.render_one(
        broadcasts.status(cli.app, broadcast_id),
        fmt=fmt,
        say=_outcome(result),
    )
    _report(cli, report)


@app.command("run-due", epilog="Examples:\n\n  */5 * * * * bankwx broadcast run-due  # crontab")
def run_due(ctx: typer.Context, fmt: FormatOption = None) -> None:
    """Send every approved broadcast whose time has come, then exit (for cron).

    Each broadcast on its own: one whose send fails ends failed (with its error), or, when a
    retry can succeed (rate limit, quota, WeChat busy), goes back to approved with its
    retry_at; the others are sent all the same. Ends with one summary line; exits 0 when
    nothing failed, 3 when every failure was WeChat's refusal, else 1. Two runs at once never
    send anything twice; a killed run is finished by the next.
    """
    cli = get_cli(ctx)
    done, report = broadcasts.run_due(cli.app, cli.progress)
    rows = [
        {"id": b.id, "account": b.account, "state": b.state, "error": b.error,
         "retry_at": b.retry_at}
        for b in done
    ]  # fmt: skip
    cli.render(rows, fmt=fmt, empty="No broadcast is due.")
    _report(cli, report)


@app.command(epilog="Examples:\n\n  bankwx broadcast status 7 --format json")
def status(
    ctx: typer.Context,
    broadcast_id: IdArgument,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Delivery results: units by state and WeChat's job-finished counts."""
    cli = get_cli(ctx)
    cli.render_one(broadcasts.status(cli.app, broadcast_id, cli.with_account(account)), fmt=fmt)


@app.command(epilog="Examples:\n\n  bankwx broadcast show 7")
def show(
    ctx: typer.Context,
    broadcast_id: IdArgument,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Show a broadcast: content, audience, state, approvals."""
    cli = get_cli(ctx)
    _show(cli, broadcasts.show(cli.app, broadcast_id, cli.with_account(account)), fmt)


@app.command("list", epilog="Examples:\n\n  bankwx broadcast list --state submitted")
def list_(
    ctx: typer.Context,
    state: Annotated[State | None, typer.Option("--state", help="Only this state.")] = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """List broadcasts, newest first, with state and counts."""
    cli = get_cli(ctx)
    cli.render(
        broadcasts.list_(cli.app, cli.with_account(account), state), fmt=fmt, columns=LIST_COLUMNS
    )
