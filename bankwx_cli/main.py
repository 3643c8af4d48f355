"""The root application: global options, the error boundary, one add_typer() per group."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from bankwx_cli import __version__
from bankwx_cli.commands import (
    account,
    broadcast,
    demo,
    follower,
    keyword,
    menu,
    messages,
    operator,
    outbox,
    serve,
    sim,
    store,
    tag,
    template,
)
from bankwx_cli.commands._cli import Cli, Fmt, err_console
from bankwx_cli.errors import BankwxError
from bankwx_cli.settings import DEFAULT_DB, DEFAULT_KEY_FILE, DEFAULT_SIM, Settings, login_user


class _Root(TyperGroup):
    """The one place where errors become a message and an exit code (STYLE §5)."""

    def invoke(self, ctx: Any) -> Any:  # typer types ctx with its private Context
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer's own: usage errors exit 2
        except BankwxError as exc:
            err_console.print(f"Error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("Interrupted.", markup=False)
            raise typer.Exit(130) from None
        except Exception as exc:
            if ctx.meta.get("debug"):
                raise
            err_console.print(
                f"Internal error ({type(exc).__name__}); run again with --debug.",
                markup=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None
        finally:
            obj = ctx.obj
            if isinstance(obj, Cli) and obj._app is not None:
                obj._app.close()


app = typer.Typer(
    cls=_Root,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="bankwx: operations toolkit for a bank's WeChat Official Account service platform.",
    epilog="Examples:\n\n  bankwx init\n\n  bankwx account list --format json\n\n"
    "  bankwx --db x.db audit --since 2026-11-01",
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"bankwx {__version__}\n")
        raise typer.Exit(0)


def configure_logging(verbose: int, debug: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    root = logging.getLogger()
    if not any(getattr(h, "_bankwx", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._bankwx = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    # urllib3's debug lines print URLs that carry access_token
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        Path, typer.Option("--db", envvar="BANKWX_DB", help="The SQLite store.")
    ] = DEFAULT_DB,
    api_base: Annotated[
        str | None,
        typer.Option(
            "--api-base",
            envvar="BANKWX_API_BASE",
            help="WeChat API base (scheme and host), e.g. a simulator's http://127.0.0.1:8081.",
        ),
    ] = None,
    account: Annotated[
        str | None,
        typer.Option("--account", envvar="BANKWX_ACCOUNT", help="Default official account."),
    ] = None,
    fmt: Annotated[
        Fmt | None, typer.Option("--format", envvar="BANKWX_FORMAT", help="Output format.")
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", envvar="BANKWX_DEBUG", help="Show tracebacks.")
    ] = False,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More logs.")] = 0,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
    operator: Annotated[
        str | None, typer.Option("--operator", envvar="BANKWX_OPERATOR", hidden=True)
    ] = None,
    master_key: Annotated[
        str | None, typer.Option("--master-key", envvar="BANKWX_MASTER_KEY", hidden=True)
    ] = None,
    key_file: Annotated[
        Path, typer.Option("--key-file", envvar="BANKWX_KEY_FILE", hidden=True)
    ] = DEFAULT_KEY_FILE,
    sim: Annotated[str, typer.Option("--sim", envvar="BANKWX_SIM", hidden=True)] = DEFAULT_SIM,
    retry_budget: Annotated[
        float, typer.Option("--retry-budget", envvar="BANKWX_RETRY_BUDGET_S", hidden=True)
    ] = 30.0,
    token_lease: Annotated[
        float, typer.Option("--token-lease", envvar="BANKWX_TOKEN_LEASE_S", hidden=True)
    ] = 15.0,
    interactive: Annotated[
        str | None, typer.Option("--interactive", envvar="BANKWX_INTERACTIVE", hidden=True)
    ] = None,
    test_actions: Annotated[
        str | None, typer.Option("--test-actions", envvar="BANKWX_TEST_ACTIONS", hidden=True)
    ] = None,
) -> None:
    """bankwx: operations toolkit for a bank's WeChat Official Account service platform.

    Manage accounts, menus, broadcasts, followers and the callback receiver from a terminal,
    cron or deployment scripts, against a local SQLite store.
    """
    ctx.meta["debug"] = debug
    configure_logging(verbose, debug)
    settings = Settings(
        db=db,
        api_base=api_base or None,
        account=account or None,
        fmt=fmt.value if fmt else None,
        debug=debug,
        verbose=verbose,
        operator=operator or login_user(),
        master_key=master_key or None,
        key_file=key_file,
        sim=sim,
        retry_budget_s=retry_budget,
        token_lease_s=token_lease,
        interactive=None if interactive in (None, "") else interactive == "1",
        test_actions=test_actions == "1",
    )
    ctx.obj = Cli(settings)


app.add_typer(account.app, name="account")
app.add_typer(operator.app, name="operator")
app.add_typer(operator.org_app, name="org")
app.add_typer(operator.role_app, name="role")
app.add_typer(sim.app, name="sim")
app.add_typer(keyword.app, name="keyword")
app.add_typer(follower.app, name="follower")
app.add_typer(tag.app, name="tag")
app.add_typer(menu.app, name="menu")
app.add_typer(messages.app, name="messages")
app.add_typer(outbox.app, name="outbox")
app.add_typer(broadcast.app, name="broadcast")
app.add_typer(template.app, name="template")
store.register(app)
app.command()(demo.demo)
app.command()(serve.serve)


def run() -> None:
    """The console script."""
    app()


if __name__ == "__main__":
    run()
