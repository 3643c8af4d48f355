"""`bankwx report ...`: reports (监管统计) as tables, JSON, CSV and charts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bankwx_cli.commands._cli import AccountOption, Cli, FormatOption, get_cli, limit_option

if TYPE_CHECKING:
    from bankwx_cli.models.reports import ReportRow

app = typer.Typer(
    help="Reports: messages, followers, menus, keywords, agents, broadcasts, WeChat API health.",
    no_args_is_help=True,
)


class By(StrEnum):  # reports.BY
    hour = "hour"
    day = "day"
    week = "week"
    month = "month"
    total = "total"


SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="From this hour, inclusive (ISO 8601; no offset: Asia/Shanghai; a date alone: "
        "its start). Default: 7 full days before --until.",
    ),
]
UntilOption = Annotated[
    str | None,
    typer.Option(
        "--until",
        help="Up to this hour, exclusive. Default: today's start (Asia/Shanghai), or the end "
        "of the current hour with --since alone.",
    ),
]
ByOption = Annotated[By, typer.Option("--by", help="One row per hour, day, week, month or total.")]
AllOption = Annotated[
    bool,
    typer.Option("--all-accounts", help="The sum of every account (account '*')."),
]
SplitOption = Annotated[
    str | None,
    typer.Option(
        "--split",
        help="One row per value: type or route (messages), scene (followers), group (agents), "
        "type (alerts).",
    ),
]
ChartOption = Annotated[
    Path | None,
    typer.Option(
        "--chart",
        help="Also draw the report into FILE: .png, .svg or .html (needs bankwx[charts]).",
        dir_okay=False,
    ),
]


def _run(
    ctx: typer.Context,
    name: str,
    *,
    since: str | None,
    until: str | None,
    by: By,
    account: str | None,
    all_accounts: bool,
    split: str | None,
    chart: Path | None,
    fmt: Any,
    unmatched: bool = False,
    limit: int = 20,
) -> None:
    from bankwx_cli.domain import reports

    cli = get_cli(ctx)
    chosen = cli.fmt(fmt)
    if chart is not None:
        from bankwx_cli.commands import _charts

        _charts.check(chart)
    if all_accounts and _from_environment(ctx, "account"):
        account = None  # BANKWX_ACCOUNT is a default, which --all-accounts replaces
    req = reports.request(
        cli.app, name, since=since, until=until, by=by.value,
        account=account if all_accounts else cli.with_account(account),
        all_accounts=all_accounts, split=split, unmatched=unmatched, limit=limit,
    )  # fmt: skip
    outcome = reports.run(cli.app, req)
    for note in outcome.notes:
        cli.warn(note)
    columns = reports.columns(req)
    if chosen == "table" and outcome.rows:
        _table(cli, req, outcome.rows, columns)
    else:
        cli.render(outcome.rows, fmt=chosen, columns=columns, empty="No rows in this range.")
    if chart is not None:
        from bankwx_cli.commands import _charts

        _charts.draw(chart, req, outcome, columns)
        cli.say(f"Chart written to {chart}.")


def _from_environment(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "ENVIRONMENT"


def _table(cli: Cli, req: Any, found: Sequence[ReportRow], columns: list[str]) -> None:
    """The table for people: the rows, and a bar column drawn with rich beside the figure the
    report is about (relative to the largest in the report)."""
    from rich.bar import Bar
    from rich.console import Console
    from rich.table import Table

    from bankwx_cli.commands._cli import _for_people, to_row
    from bankwx_cli.domain import reports

    rows = [to_row(r) for r in found]

    main = reports.MAIN["unmatched" if req.report == "keywords" and req.unmatched else req.report]
    top = max((float(r.get(main) or 0) for r in rows), default=0.0) or 1.0
    table = Table(title=f"{req.report} report", show_lines=False)
    for column in columns:
        table.add_column(column, justify="right" if column == main else "left",
                         no_wrap=column == "period")  # fmt: skip
    table.add_column("")
    for row in rows:
        cells = [str(_for_people(c, row.get(c))) for c in columns]
        cells[0] = cells[0][:16].replace("T", " ")  # the period, in the bank's time
        table.add_row(*cells, Bar(top, 0, float(row.get(main) or 0), width=12))
    Console().print(table)


def _report(name: str, doc: str, example: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        since: SinceOption = None,
        until: UntilOption = None,
        by: ByOption = By.day,
        account: AccountOption = None,
        all_accounts: AllOption = False,
        split: SplitOption = None,
        chart: ChartOption = None,
        fmt: FormatOption = None,
    ) -> None:
        _run(ctx, name, since=since, until=until, by=by, account=account,
             all_accounts=all_accounts, split=split, chart=chart, fmt=fmt)  # fmt: skip

    command.__doc__ = doc
    command.__name__ = name
    return app.command(name, epilog=f"Examples:\n\n{example}")(command)


_report(
    "messages",
    "Messages followers sent, by outcome, and handling times (p50, p90, p99).",
    "  bankwx report messages --since 2026-03-01 --until 2026-04-01 --by week\n\n"
    "  bankwx report messages --by hour --split route --format json",
)
_report(
    "followers",
    "Follows and unfollows, net and cumulative, by scene with --split scene.",
    "  bankwx report followers --by month --split scene\n\n"
    "  bankwx report followers --all-accounts --format csv",
)
_report(
    "menus",
    "Menu clicks by key and menu version, most clicked first.",
    "  bankwx report menus --by total --since 2026-03-01\n\n"
    "  bankwx report menus --chart menus.png",
)
_report(
    "broadcasts",
    "Broadcasts sent or created in the range: approval, audience, sent, filtered, failed.",
    "  bankwx report broadcasts --since 2026-01-01 --by month\n\n"
    "  bankwx report broadcasts --all-accounts --format json",
)
_report(
    "agents",
    "Agent supervision: sessions, first response, handling, queue waits, SLA, ratings.",
    "  bankwx report agents --by week\n\n"
    "  bankwx report agents --split group --by total --format json",
)
_report(
    "alerts",
    "Alerts as alert status counts them, by the hour each event was received: received, "
    "rejected, duplicates, suppressed, deferred, sent, delivered, SMS, latency; per event "
    "type with --split type.",
    "  bankwx report alerts --by day\n\n  bankwx report alerts --by total --format json\n\n"
    "  bankwx report alerts --split type --by week",
)
_report(
    "api",
    "WeChat API health per endpoint: calls, errors, retries, latency, daily quota.",
    "  bankwx report api --by hour --since 2026-03-01T08:00\n\n"
    "  bankwx report api --by total --format json",
)


@app.command(
    epilog="Examples:\n\n  bankwx report keywords --by total\n\n"
    "  bankwx report keywords --unmatched --limit 50 --format csv"
)
def keywords(
    ctx: typer.Context,
    since: SinceOption = None,
    until: UntilOption = None,
    by: ByOption = By.day,
    account: AccountOption = None,
    all_accounts: AllOption = False,
    split: SplitOption = None,
    chart: ChartOption = None,
    unmatched: Annotated[
        bool,
        typer.Option(
            "--unmatched",
            help="Texts answered by the default reply instead (masked), from the log.",
        ),
    ] = False,
    limit: Annotated[int, limit_option("With --unmatched: at most N texts a period.")] = 20,
    fmt: FormatOption = None,
) -> None:
    """Keyword rules by hits (messages and clicks they answered), most hits first."""
    _run(ctx, "keywords", since=since, until=until, by=by, account=account,
         all_accounts=all_accounts, split=split, chart=chart, fmt=fmt, unmatched=unmatched,
         limit=limit)  # fmt: skip


@app.command(
    epilog="Examples:\n\n  bankwx report backfill\n\n  bankwx report backfill --account main"
)
def backfill(
    ctx: typer.Context,
    account: Annotated[
        str | None,
        typer.Option("--account", help="Only this account (default: every account)."),
    ] = None,
    fmt: FormatOption = None,
) -> None:
    """Count the conversation log from before live counting into the reports' roll-ups.

    Short batches, each committed with how far it got: an interrupted run resumes where it
    stopped, and a second run changes nothing.
    """
    from bankwx_cli.domain import reports

    cli = get_cli(ctx)
    done = reports.backfill(cli.app, account)
    total = sum(d.entries for d in done)
    cli.render(done, fmt=fmt, columns=["account", "entries", "upto"])
    cli.say(f"Counted {total} log entries.")
