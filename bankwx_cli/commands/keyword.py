"""`bankwx keyword ...`: keyword rules (指令查询) for text and menu keys."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bankwx_cli.commands._cli import AccountOption, FormatOption, YesOption, get_cli, id_argument
from bankwx_cli.domain import keywords
from bankwx_cli.errors import ValidationError
from bankwx_cli.models.replies import ImageReply, Reply, TextReply

app = typer.Typer(
    help="Keyword rules: text and menu keys answered by a reply or a named action.",
    no_args_is_help=True,
)

#: The range of --priority: enough for any ordering of rules, and an answer for a typo.
MAX_PRIORITY = 9999


class Match(StrEnum):  # keywords.MATCHES
    exact = "exact"
    prefix = "prefix"
    contains = "contains"
    regex = "regex"
    click = "click"


@app.command(
    epilog="Examples:\n\n  bankwx keyword add 余额 --match exact --action help\n\n"
    "  bankwx keyword add '^(网点|ATM)' --match regex --priority 10 --reply-text '请发送位置'\n\n"
    "  bankwx keyword add BALANCE --match click --reply-text '请先绑定银行卡'\n\n"
    "  bankwx keyword add 关闭提醒 --match prefix --action alert_settings"
)
def add(
    ctx: typer.Context,
    pattern: Annotated[str, typer.Argument(help="Text, regex, or menu key (with click).")],
    match: Annotated[
        Match,
        typer.Option(
            "--match", help="exact, prefix (the text starts with it), contains, regex or click."
        ),
    ],
    priority: Annotated[
        int,
        typer.Option("--priority", help="Higher wins.", min=-MAX_PRIORITY, max=MAX_PRIORITY),
    ] = 0,
    reply_text: Annotated[str | None, typer.Option("--reply-text", help="Reply text.")] = None,
    reply_news: Annotated[
        Path | None,
        typer.Option(
            "--reply-news",
            help="YAML/JSON file: title, description, url, picurl.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    reply_image: Annotated[
        str | None, typer.Option("--reply-image", help="Reply with this image media id.")
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Named action; see keyword actions.")
    ] = None,
    arg: Annotated[
        str | None,
        typer.Option(
            "--arg",
            help="The action's argument (a menu key's command: --arg 提醒设置); see keyword "
            "actions.",
        ),
    ] = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Add a keyword rule; broken regexes and unknown actions are refused here."""
    cli = get_cli(ctx)
    reply: Reply | None = None
    given = [x for x in (reply_text, reply_news, reply_image) if x is not None]
    if len(given) > 1:
        raise ValidationError("give one of --reply-text, --reply-news, --reply-image.")
    if reply_text is not None:
        reply = TextReply(reply_text)
    elif reply_news is not None:
        reply = keywords.load_news(reply_news)
    elif reply_image is not None:
        reply = ImageReply(reply_image)
    rule = keywords.add(
        cli.app, cli.with_account(account), pattern, match, priority, reply, action, arg
    )
    cli.render_one(rule, fmt=fmt, say=f"Added keyword rule {rule.id} for '{rule.account}'.")


@app.command("list", epilog="Examples:\n\n  bankwx keyword list --account main --format json")
def list_(ctx: typer.Context, account: AccountOption = None, fmt: FormatOption = None) -> None:
    """List an account's rules in the order they are tried."""
    cli = get_cli(ctx)
    rules = keywords.list_(cli.app, cli.with_account(account))
    cli.render(rules, fmt=fmt, columns=["id", "priority", "match", "pattern", "answer"])


@app.command(epilog="Examples:\n\n  bankwx keyword remove 3 --yes")
def remove(
    ctx: typer.Context,
    rule_id: Annotated[int, id_argument("Rule id (keyword list).")],
    yes: YesOption = False,
    account: AccountOption = None,
) -> None:
    """Remove a keyword rule (with --account: only if it is that account's)."""
    cli = get_cli(ctx)
    account = cli.with_account(account)
    rule = keywords.removable(cli.app, rule_id, account)  # checks the permission first
    cli.confirm(f"Remove keyword rule {rule_id} ('{rule.pattern}' on {rule.account})?", yes=yes)
    keywords.remove(cli.app, rule_id, account)
    cli.say(f"Removed keyword rule {rule_id}.")


@app.command(
    "test",
    epilog="Examples:\n\n  bankwx keyword test 余额\n\n"
    "  bankwx keyword test --click BALANCE --format json",
)
def try_rule(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="A follower's text.")] = None,
    click: Annotated[str | None, typer.Option("--click", help="A menu key instead.")] = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Show which rule answers a text or menu key, and the reply (no WeChat involved)."""
    from bankwx_cli.domain import routing  # here: it loads wechatpy

    cli = get_cli(ctx)
    result = routing.dry_route(cli.app, cli.with_account(account), text, click)
    cli.render_one(result, fmt=fmt, say=result.summary(), show=result.reply_json)


def actions_(ctx: typer.Context, fmt: FormatOption = None) -> None:
    """List the named actions a rule can call."""
    cli = get_cli(ctx)
    cli.render(keywords.available_actions(cli.app), fmt=fmt)


app.command("actions", epilog="Examples:\n\n  bankwx keyword actions --format json")(actions_)
