"""`bankwx account ...`: official accounts and their secrets."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from bankwx_cli.commands._cli import (
    AccountOption,
    Cli,
    Fmt,
    FormatOption,
    YesOption,
    complete_account,
    get_cli,
)
from bankwx_cli.domain import account_settings, accounts
from bankwx_cli.errors import ValidationError

app = typer.Typer(
    help="Official accounts: add, list, show, update, remove, check credentials, settings.",
    no_args_is_help=True,
)

COLUMNS = ["name", "appid", "original_id", "type", "mode", "token_mode", "updated_at"]
SETTING_COLUMNS = ["key", "value", "set", "type", "area", "help"]


class AccountType(StrEnum):  # accounts.TYPES
    service = "service"
    subscription = "subscription"


class Mode(StrEnum):  # accounts.MODES
    plain = "plain"
    compatible = "compatible"
    safe = "safe"


class TokenMode(StrEnum):  # accounts.TOKEN_MODES
    stable = "stable"
    classic = "classic"


NameArgument = Annotated[str, typer.Argument(help="Account name.", autocompletion=complete_account)]
SecretOption = Annotated[
    str | None,
    typer.Option("--secret", help="AppSecret (32 hex characters); '-' reads it from stdin."),
]
TokenOption = Annotated[
    str | None, typer.Option("--token", help="Callback token (3 to 32 letters or digits).")
]
AesKeyOption = Annotated[
    str | None,
    typer.Option("--aes-key", help="EncodingAESKey (43 letters or digits); '-' reads stdin."),
]
AppidOption = Annotated[str | None, typer.Option("--appid", help="AppID: 'wx' + 16 hex.")]
OriginalIdOption = Annotated[
    str | None, typer.Option("--original-id", help="Original id (gh_ + 12 hex).")
]
TypeOption = Annotated[
    AccountType | None, typer.Option("--type", help="service (default) or subscription.")
]
ModeOption = Annotated[
    Mode | None,
    typer.Option(
        "--mode", help="Message mode: plain, compatible or safe (default safe with --aes-key)."
    ),
]
TokenModeOption = Annotated[
    TokenMode | None,
    typer.Option(
        "--token-mode",
        help="Access token endpoint: stable (default; shares the token safely) or classic.",
    ),
]


class ApprovalArea(StrEnum):
    menus = "menus"
    none = "none"


def _from_stdin(secret: str | None, aes_key: str | None) -> tuple[str | None, str | None]:
    """'-' values are read from standard input, one line each, secret first."""
    if secret == "-":
        secret = sys.stdin.readline().strip()
    if aes_key == "-":
        aes_key = sys.stdin.readline().strip()
    return secret, aes_key


def _say_account(cli: Cli, change: accounts.AccountChange, fmt: Fmt | None, said: str) -> None:
    for warning in change.warnings:
        cli.warn(warning)
    cli.render_one(change.account, fmt=fmt, say=said)


@app.command(
    epilog="Examples:\n\n  bankwx account add main --appid wx1234567890abcdef --secret - "
    "--token tok123 --aes-key - --original-id gh_0123456789ab\n\n"
    "  bankwx account add cards --appid wxabcdef1234567890 --secret S --token T "
    "--original-id gh_abcdefabcdef --mode plain"
)
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Short name, [a-z0-9-]; the URL is /wx/NAME.")],
    appid: Annotated[str, typer.Option("--appid", help="AppID: 'wx' + 16 hex.")],
    secret: Annotated[
        str, typer.Option("--secret", help="AppSecret (32 hex); '-' reads it from stdin.")
    ],
    token: Annotated[str, typer.Option("--token", help="Callback token (3-32 letters/digits).")],
    original_id: Annotated[str, typer.Option("--original-id", help="Original id: gh_ + 12 hex.")],
    aes_key: AesKeyOption = None,
    type_: Annotated[
        AccountType, typer.Option("--type", help="service or subscription.")
    ] = AccountType.service,
    mode: ModeOption = None,
    token_mode: Annotated[
        TokenMode, typer.Option("--token-mode", help="stable (default) or classic.")
    ] = TokenMode.stable,
    fmt: FormatOption = None,
) -> None:
    """Add an official account; its secret, token and AES key are encrypted at rest."""
    cli = get_cli(ctx)
    secret_v, aes_v = _from_stdin(secret, aes_key)
    if not secret_v:
        raise ValidationError("--secret is empty.")
    change = accounts.add(
        cli.app,
        name,
        appid=appid,
        secret=secret_v,
        token=token,
        original_id=original_id,
        aes_key=aes_v,
        type_=type_,
        mode=mode,
        token_mode=token_mode,
    )
    _say_account(cli, change, fmt, f"Added account '{name}' ({change.account.mode} mode).")


@app.command(
    "list", epilog="Examples:\n\n  bankwx account list\n\n  bankwx account list --format json"
)
def list_(ctx: typer.Context, fmt: FormatOption = None) -> None:
    """List the official accounts in the store (never their secrets)."""
    cli = get_cli(ctx)
    cli.render(accounts.list_(cli.app), fmt=fmt, columns=COLUMNS)


@app.command(
    epilog="Examples:\n\n  bankwx account show main\n\n  bankwx account show --format json"
)
def show(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="Account name.", autocompletion=complete_account)
    ] = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Show one account's settings (never its secrets)."""
    cli = get_cli(ctx)
    cli.render_one(accounts.show(cli.app, name or cli.with_account(account)), fmt=fmt)


@app.command(
    epilog="Examples:\n\n  bankwx account update main --welcome '欢迎关注'\n\n"
    "  bankwx account update main --secret - < secret.txt\n\n"
    "  bankwx account update main --require-approval menus"
)
def update(
    ctx: typer.Context,
    name: NameArgument,
    appid: AppidOption = None,
    secret: SecretOption = None,
    token: TokenOption = None,
    aes_key: AesKeyOption = None,
    original_id: OriginalIdOption = None,
    type_: TypeOption = None,
    mode: ModeOption = None,
    token_mode: TokenModeOption = None,
    welcome: Annotated[
        str | None,
        typer.Option(
            "--welcome",
            help="Text a new follower gets on subscribe; '' for the default (the setting welcome).",
        ),
    ] = None,
    default_reply: Annotated[
        str | None,
        typer.Option(
            "--default-reply",
            help="Text for messages that no rule answers; '' for the default "
            "(the setting default_reply).",
        ),
    ] = None,
    preview_openids: Annotated[
        str | None,
        typer.Option(
            "--preview-openids",
            help="Comma-separated test followers for previews (the setting preview_openids).",
        ),
    ] = None,
    rate: Annotated[
        list[str] | None,
        typer.Option(
            "--rate",
            help="ENDPOINT=N: at most N calls a second to that WeChat endpoint "
            "(e.g. message/template/send=200). Repeatable; adds to the setting rates.",
        ),
    ] = None,
    require_approval: Annotated[
        list[ApprovalArea] | None,
        typer.Option(
            "--require-approval",
            help="Areas whose changes need a second operator's approval (maker-checker): "
            "menus; 'none' for no approval. Repeatable; replaces the setting require_approval.",
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="Public base URL of this bankwx, https (http only to this machine); '' for "
            "none (the setting public_url).",
        ),
    ] = None,
    map_url: Annotated[
        str | None,
        typer.Option(
            "--map-url",
            help="Map link of a branch in location answers, with {lat} and {lng} (the setting "
            "map_url).",
        ),
    ] = None,
    fmt: FormatOption = None,
) -> None:
    """Change an account's fields; secrets given are re-encrypted.

    --mode, --welcome, --default-reply, --preview-openids, --rate, --require-approval,
    --public-url and --map-url are aliases of bankwx account set: the same settings, checked
    the same way.
    """
    cli = get_cli(ctx)
    secret, aes_key = _from_stdin(secret, aes_key)
    settings = accounts.parse_rates(rate) if rate else {}
    if preview_openids is not None:
        settings["preview_openids"] = preview_openids
    if require_approval:
        settings["require_approval"] = [area.value for area in require_approval]
    if public_url is not None:
        settings["public_url"] = public_url
    if map_url is not None:
        settings["map_url"] = map_url
    change = accounts.update(
        cli.app,
        name,
        appid=appid,
        secret=secret,
        token=token,
        aes_key=aes_key,
        original_id=original_id,
        type_=type_,
        mode=mode,
        token_mode=token_mode,
        welcome=welcome,
        default_reply=default_reply,
        settings=settings or None,
    )
    _say_account(cli, change, fmt, f"Updated account '{name}'.")


@app.command(epilog="Examples:\n\n  bankwx account remove old-account --yes")
def remove(
    ctx: typer.Context,
    name: NameArgument,
    yes: YesOption = False,
) -> None:
    """Remove an account and its secrets from the store."""
    cli = get_cli(ctx)
    accounts.require_remove(cli.app, name)
    cli.confirm(f"Remove account '{name}' and its secrets?", yes=yes)
    accounts.remove(cli.app, name)
    cli.say(f"Removed account '{name}'.")


@app.command(
    epilog="Examples:\n\n  bankwx account check --account main\n\n"
    "  bankwx --api-base http://127.0.0.1:8081 account check --format json"
)
def check(ctx: typer.Context, account: AccountOption = None, fmt: FormatOption = None) -> None:
    """Prove the account's appid and secret against WeChat (token, callback IP list)."""
    cli = get_cli(ctx)
    result = accounts.check(cli.app, cli.with_account(account))
    cli.render_one(result, fmt=fmt)


@app.command(epilog="Examples:\n\n  bankwx account token --account main")
def token(ctx: typer.Context, account: AccountOption = None, fmt: FormatOption = None) -> None:
    """Show the shared access token's age and expiry (never the token)."""
    cli = get_cli(ctx)
    cli.render_one(accounts.token_status(cli.app, cli.with_account(account)), fmt=fmt)


def _say_change(
    cli: Cli, name: str, change: account_settings.SettingChange, fmt: Fmt | None
) -> None:
    for warning in change.warnings:
        cli.warn(warning)
    row = change.setting
    shown = account_settings.format_raw(row.type, row.value)
    if not change.changed:
        said = f"Setting {row.key} of '{name}' is already {shown}; nothing changed."
    elif row.set:
        said = f"Set {row.key} of '{name}' to {shown}."
    else:
        said = f"Unset {row.key} of '{name}': it is the default, {shown}."
    cli.render_one(change.setting, fmt=fmt, say=said)


@app.command(
    "set",
    epilog="Examples:\n\n  bankwx account set main retention_days 90\n\n"
    "  bankwx account set main welcome '欢迎关注示例银行'\n\n"
    "  bankwx account set main preview_openids oTest1,oTest2\n\n"
    "  bankwx account set main rates '{\"message/template/send\": 200}'",
)
def set_(
    ctx: typer.Context,
    name: NameArgument,
    key: Annotated[str, typer.Argument(help="Setting, e.g. welcome (see account settings).")],
    value: Annotated[
        str,
        typer.Argument(
            help="New value: text; a whole number; true/false; a comma-separated list or "
            "JSON array; JSON, as the setting's type says."
        ),
    ],
    fmt: FormatOption = None,
) -> None:
    """Give an account its own value of a setting; a running receiver sees it within 2 s.

    The value is checked against the setting's type and rules; an unknown setting, a bad
    value, or a setting the account's type cannot use is refused (exit 1). The change is
    audited.
    """
    cli = get_cli(ctx)
    _say_change(cli, name, account_settings.set_(cli.app, name, key, value), fmt)


@app.command(
    epilog="Examples:\n\n  bankwx account unset main welcome\n\n"
    "  bankwx account unset main retention_days"
)
def unset(
    ctx: typer.Context,
    name: NameArgument,
    key: Annotated[str, typer.Argument(help="Setting to return to its default.")],
    fmt: FormatOption = None,
) -> None:
    """Return a setting of an account to its default (audited)."""
    cli = get_cli(ctx)
    _say_change(cli, name, account_settings.unset(cli.app, name, key), fmt)


@app.command(
    epilog="Examples:\n\n  bankwx account settings main\n\n"
    "  bankwx account settings main --format json"
)
def settings(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="Account name.", autocompletion=complete_account)
    ] = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """List an account's settings: value in effect, default, type, owning area, help.

    'value' is the default when the account has no value of its own ('set' is false).
    """
    cli = get_cli(ctx)
    chosen = accounts.show(cli.app, name or cli.with_account(account))
    rows = account_settings.list_(cli.app, chosen.name)
    cli.render(rows, fmt=fmt, columns=SETTING_COLUMNS)
