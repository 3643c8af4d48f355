"""`bankwx outbox ...`: the durable queue of everything bankwx sends on its own initiative."""

from __future__ import annotations

import signal
import threading
from enum import StrEnum
from typing import Annotated

import typer

from bankwx_cli.commands._cli import (
    AccountOption,
    FormatOption,
    get_cli,
    id_argument,
    limit_option,
)
from bankwx_cli.domain import outbox

app = typer.Typer(
    help="The outbox: list, run (dispatch), retry, pause and resume sending.",
    no_args_is_help=True,
)

COLUMNS = [
    "id",
    "kind",
    "lane",
    "account",
    "openid",
    "state",
    "attempts",
    "next_attempt_at",
    "idempotency_key",
    "last_error",
]


class Lane(StrEnum):  # outbox.LANES
    reply = "reply"
    alert = "alert"
    agent = "agent"
    broadcast = "broadcast"


class State(StrEnum):  # outbox.STATES
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    unknown = "unknown"
    cancelled = "cancelled"


LaneOption = Annotated[
    Lane | None, typer.Option("--lane", help="reply, alert, agent or broadcast (default: all).")
]


@app.command(
    "list",
    epilog="Examples:\n\n  bankwx outbox list --state unknown\n\n"
    "  bankwx outbox list --lane reply --format json",
)
def list_(
    ctx: typer.Context,
    state: Annotated[
        State | None,
        typer.Option("--state", help="pending, sending, sent, failed, unknown or cancelled."),
    ] = None,
    lane: LaneOption = None,
    limit: Annotated[int | None, limit_option("At most N units.")] = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """List outbox units with their state, attempts and last error."""
    cli = get_cli(ctx)
    units = outbox.list_(
        cli.app, state=state, lane=lane, account=cli.with_account(account), limit=limit
    )
    cli.render(units, fmt=fmt, columns=COLUMNS)


@app.command(
    epilog="Examples:\n\n  bankwx outbox run            # cron: send what is due, then exit\n\n"
    "  bankwx outbox run --follow   # as a service"
)
def run(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Send what is due and exit.")] = True,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep dispatching until stopped (SIGTERM).")
    ] = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Dispatch due units: claims them in the store, under the shared rate budget.

    Exits 0 when everything sent; 3 when every failure was WeChat's refusal; else 1. With
    --format json, one object: sent, failed, unknown, to_retry, seconds, exit_code, failures.
    """
    cli = get_cli(ctx)
    stop = threading.Event()
    if follow:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    done = outbox.run(cli.app, cli.with_account(account), follow=follow, stop=stop)
    report = done.report
    if cli.fmt(fmt) == "json":
        cli.for_json(done, fmt)
    else:
        for failure in report.failures[:20]:
            cli.say(failure.message())
        cli.say(report.summary())
    if report.exit_code:
        raise typer.Exit(report.exit_code)
    _ = once


@app.command(epilog="Examples:\n\n  bankwx outbox retry 42")
def retry(
    ctx: typer.Context,
    unit_id: Annotated[int, id_argument("The unit (outbox list).")],
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Send an unknown or failed unit again (check first that the follower did not get it).

    With --account, only if the unit is that account's."""
    cli = get_cli(ctx)
    unit = outbox.retry(cli.app, unit_id, cli.with_account(account))
    cli.render_one(
        unit, fmt=fmt, say=f"Unit {unit_id} is pending again; a dispatcher will send it."
    )


@app.command(
    epilog="Examples:\n\n  bankwx outbox pause                       # everything\n\n"
    "  bankwx outbox pause --account main --lane broadcast"
)
def pause(ctx: typer.Context, account: AccountOption = None, lane: LaneOption = None) -> None:
    """Emergency stop: dispatchers claim nothing more (within a second); nothing is lost."""
    cli = get_cli(ctx)
    outbox.pause(cli.app, cli.with_account(account), lane)
    cli.say(f"Paused {lane or 'every'} lane for {cli.with_account(account) or 'every account'}.")


@app.command(epilog="Examples:\n\n  bankwx outbox resume\n\n  bankwx outbox resume --lane reply")
def resume(ctx: typer.Context, account: AccountOption = None, lane: LaneOption = None) -> None:
    """Lift a pause; waiting units are sent."""
    cli = get_cli(ctx)
    outbox.resume(cli.app, cli.with_account(account), lane)
    cli.say("Resumed.")
