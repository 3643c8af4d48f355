"""`bankwx alert ...`: alerts (消息提醒): sources, rules, push, status, show."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bankwx_cli.commands._cli import (
    AccountOption,
    Cli,
    FormatOption,
    YesOption,
    get_cli,
    id_argument,
)
from bankwx_cli.domain import alerts
from bankwx_cli.models.alerts import NewKey

app = typer.Typer(
    help="Alerts: back-end events to template messages, with SMS when WeChat cannot deliver.",
    no_args_is_help=True,
)
source_app = typer.Typer(
    help="Sources: the back-end systems that push events, each with its own API key.",
    no_args_is_help=True,
)
rule_app = typer.Typer(
    help="Rules: one per account and event type, a template and its fields.",
    no_args_is_help=True,
)
app.add_typer(source_app, name="source")
app.add_typer(rule_app, name="rule")

SOURCE_COLUMNS = ["name", "account", "created_at", "created_by", "last_used_at", "rotated_at"]
RULE_COLUMNS = ["id", "account", "type", "template_id", "label", "security", "fields"]
NameArgument = Annotated[str, typer.Argument(help="The source's name.")]


def _say_key(cli: Cli, key: NewKey, fmt: str | None, what: str) -> None:
    if cli.fmt(fmt) == "json":
        cli.for_json(key, fmt)
        return
    sys.stdout.write(key.key + "\n")
    cli.say(f"{what} Store it now: it is not shown again.")


@source_app.command(
    "add",
    epilog="Examples:\n\n  bankwx alert source add core-banking --account main\n\n"
    "  bankwx alert source add cards --format json",
)
def source_add(
    ctx: typer.Context,
    name: NameArgument,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Add a source of events for an account; print its new API key, once.

    The key is stored only as a keyed hash: it cannot be shown again (rotate it instead).
    """
    cli = get_cli(ctx)
    key = alerts.add_source(cli.app, name, cli.with_account(account))
    _say_key(cli, key, fmt, f"Added source '{name}'; its key is above.")


@source_app.command(
    "list",
    epilog="Examples:\n\n  bankwx alert source list\n\n  bankwx alert source list --format json",
)
def source_list(
    ctx: typer.Context, account: AccountOption = None, fmt: FormatOption = None
) -> None:
    """List the sources (never their keys)."""
    cli = get_cli(ctx)
    rows = alerts.list_sources(cli.app, account)
    cli.render(rows, fmt=fmt, columns=SOURCE_COLUMNS, empty="No alert sources.")


@source_app.command("remove", epilog="Examples:\n\n  bankwx alert source remove core-banking --yes")
def source_remove(ctx: typer.Context, name: NameArgument, yes: YesOption = False) -> None:
    """Remove a source: its keys stop working at once (its events stay)."""
    cli = get_cli(ctx)
    cli.confirm(f"Remove alert source '{name}'? Its key stops working.", yes=yes)
    alerts.remove_source(cli.app, name)
    cli.say(f"Removed alert source '{name}'.")


@source_app.command(
    "rotate",
    epilog="Examples:\n\n  bankwx alert source rotate core-banking\n\n"
    "  bankwx alert source rotate core-banking --grace 0",
)
def source_rotate(
    ctx: typer.Context,
    name: NameArgument,
    grace: Annotated[
        int,
        typer.Option("--grace", help="Seconds the old key keeps working (0: it stops now).", min=0),
    ] = alerts.DEFAULT_GRACE_S,
    fmt: FormatOption = None,
) -> None:
    """Give a source a new API key; print it, once. The old key works for --grace seconds."""
    cli = get_cli(ctx)
    key = alerts.rotate_source(cli.app, name, grace)
    _say_key(cli, key, fmt, f"Rotated the key of '{name}'; the old one works {grace} s more.")


@rule_app.command(
    "add",
    epilog="Examples:\n\n  bankwx alert rule add transaction --template TEMPLATE_ID "
    "--field 'time={occurred_at|time}' --field 'amount={amount_fen|yuan}'\n\n"
    "  bankwx alert rule add login --template TEMPLATE_ID --field 'time={occurred_at|time}' "
    "--security --sms '您的账户于{occurred_at|time}登录'",
)
def rule_add(
    ctx: typer.Context,
    type_: Annotated[str, typer.Argument(metavar="TYPE", help="The events' type.")],
    template: Annotated[
        str, typer.Option("--template", help="The template's id (see bankwx template list).")
    ],
    field: Annotated[
        list[str] | None,
        typer.Option(
            "--field",
            help="NAME=EXPR, once per placeholder (first and remark may be left out). EXPR is "
            "text with {key|filter} over data keys, occurred_at, type, event_id; filters: "
            "yuan, mask, time, date.",
        ),
    ] = None,
    label: Annotated[
        str | None,
        typer.Option("--label", help="What followers call these alerts (default: the title)."),
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="The message's link (EXPR).")] = None,
    sms: Annotated[
        str | None,
        typer.Option("--sms", help="The SMS text (EXPR; default: the title and the values)."),
    ] = None,
    security: Annotated[
        bool,
        typer.Option("--security", help="Security alerts: preferences and quiet hours ignored."),
    ] = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Add the rule for an event type: its template and how each field is made."""
    cli = get_cli(ctx)
    rule = alerts.add_rule(
        cli.app,
        type_,
        template,
        alerts.parse_fields(field or []),
        label=label,
        url=url,
        sms=sms,
        security=security,
        account=cli.with_account(account),
    )
    cli.render_one(rule, fmt, say=f"Added alert rule {rule.id} for '{rule.type}'.")


@rule_app.command(
    "list", epilog="Examples:\n\n  bankwx alert rule list\n\n  bankwx alert rule list --format json"
)
def rule_list(ctx: typer.Context, account: AccountOption = None, fmt: FormatOption = None) -> None:
    """List the alert rules."""
    cli = get_cli(ctx)
    rows = alerts.list_rules(cli.app, account)
    cli.render(rows, fmt=fmt, columns=RULE_COLUMNS, empty="No alert rules.")


@rule_app.command("remove", epilog="Examples:\n\n  bankwx alert rule remove 3 --yes")
def rule_remove(
    ctx: typer.Context,
    rule_id: Annotated[int, id_argument("The rule's id (see bankwx alert rule list).")],
    yes: YesOption = False,
) -> None:
    """Remove an alert rule: events of its type are rejected from now on."""
    cli = get_cli(ctx)
    cli.confirm(f"Remove alert rule {rule_id}?", yes=yes)
    rule = alerts.remove_rule(cli.app, rule_id)
    cli.say(f"Removed alert rule {rule_id} ('{rule.type}' on {rule.account}).")


@rule_app.command(
    "test",
    epilog="Examples:\n\n  bankwx alert rule test transaction --event event.json\n\n"
    "  bankwx alert rule test transaction --event event.json --format json",
)
def rule_test(
    ctx: typer.Context,
    type_: Annotated[str, typer.Argument(metavar="TYPE", help="The events' type.")],
    event: Annotated[
        Path,
        typer.Option("--event", help="A JSON file holding one event.", exists=True, dir_okay=False),
    ],
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Show what the rule makes of an event: the template data and the SMS (nothing is sent)."""
    cli = get_cli(ctx)
    rendered = alerts.test_rule(cli.app, type_, event, cli.with_account(account))
    cli.render_one(rendered, fmt, title=f"Alert rule for '{type_}'")


@app.command(
    epilog="Examples:\n\n  bankwx alert push events.jsonl --source core-banking\n\n"
    "  bankwx alert push events.jsonl --source core-banking --format json"
)
def push(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(help="JSON Lines: one event a line.", exists=True, dir_okay=False),
    ],
    source: Annotated[str, typer.Option("--source", help="The source the events come from.")],
    fmt: FormatOption = None,
) -> None:
    """Take events from a file as the intake takes them from the source's back-end.

    Each line is validated and rendered; a rejected line leaves nothing and is named with its
    reason; an event stored before counts as a duplicate. Exit 1 when any line is rejected.
    """
    cli = get_cli(ctx)
    results = alerts.push_file(cli.app, file, source)
    report = alerts.push_report(results, file.name)
    cli.for_json([r.to_json() for r in results], fmt)
    for failure in report.failures:
        cli.say(failure.message())
    cli.say(report.summary())
    if report.exit_code:
        raise typer.Exit(report.exit_code)


@app.command(
    epilog="Examples:\n\n  bankwx alert status\n\n"
    "  bankwx alert status --since 2026-01-05T00:00 --format json"
)
def status(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", help="From this time (ISO 8601; bank time).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Before this time (ISO 8601; bank time).")
    ] = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Show how alerts fared: counts by outcome, latency, the SMS that WeChat avoided."""
    cli = get_cli(ctx)
    found = alerts.status(cli.app, since, until, account)
    cli.render_one(found, fmt, title="Alerts")


@app.command(
    epilog="Examples:\n\n  bankwx alert show tx-1001\n\n"
    "  bankwx alert show tx-1001 --source core-banking --format json"
)
def show(
    ctx: typer.Context,
    event_id: Annotated[str, typer.Argument(metavar="EVENT_ID", help="The event's id.")],
    source: Annotated[
        str | None, typer.Option("--source", help="The source (when several sent this id).")
    ] = None,
    fmt: FormatOption = None,
) -> None:
    """Show one event: its state, channel and recipients."""
    cli = get_cli(ctx)
    found = alerts.show(cli.app, event_id, source)
    if cli.fmt(fmt) == "json":
        cli.for_json(found, fmt)
        return
    row = found.to_json()
    row["recipients"] = [_recipient(r) for r in row["recipients"]]  # a line each, not a dict
    cli.for_people(fmt, one=row, title=f"Alert {event_id}")


def _recipient(r: dict[str, Any]) -> str:
    """A recipient for people: ``OPENID STATE (REASON) msgid MSGID``."""
    text = f"{r['openid']} {r['state']}"
    if r.get("reason"):
        text += f" ({r['reason']})"
    if r.get("msgid"):
        text += f" msgid {r['msgid']}"
    return text
