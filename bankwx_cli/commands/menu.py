"""`bankwx menu ...`: custom menus (自定义菜单) as files: validate, plan, deploy, roll back."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bankwx_cli.commands._cli import (
    MAX_INT,
    AccountOption,
    Cli,
    DryRunOption,
    Fmt,
    FormatOption,
    YesOption,
    get_cli,
    limit_option,
)
from bankwx_cli.domain import menus
from bankwx_cli.errors import DIFFERENCES

app = typer.Typer(
    help="Menus as files: validate, plan, deploy, pull, history, rollback, approval.",
    no_args_is_help=True,
)

HISTORY_COLUMNS = [
    "version",
    "state",
    "created_at",
    "created_by",
    "decided_by",
    "deployed_at",
    "hash",
    "source",
    "note",
]
FileArgument = Annotated[
    Path,
    typer.Argument(
        help="Menu file, YAML or JSON, in menu/create's or menu/get's shape.",
        exists=True,
        dir_okay=False,
    ),
]
VersionArgument = Annotated[
    int, typer.Argument(help="Version number (see bankwx menu history).", min=1, max=MAX_INT)
]


def _show_plan(cli: Cli, plan: menus.MenuPlan, fmt: Fmt | None) -> None:
    """The plan for people: a headline and warnings on stderr, the diff on stdout (csv and
    markdown: as a table). JSON is written by the caller, as one object."""
    cli.for_people(fmt, say=plan.headline())
    for issue in plan.warnings:
        cli.warn(f"{issue.path}: {issue.message}")
    cli.for_people(
        fmt,
        rows=plan.rows(),
        columns=["kind", "path", "summary"],
        text="".join(f"{change.summary}\n" for change in plan.changes),
        empty="",
    )


@app.command(
    epilog="Examples:\n\n  bankwx menu validate menu.yaml\n\n"
    "  bankwx menu validate menu.json --account main --format json"
)
def validate(
    ctx: typer.Context,
    file: FileArgument,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Check a menu file against WeChat's limits; exit 1 when WeChat would refuse it.

    Every error is listed with its path in the file (button[1].sub_button[4].name) and the
    limit it breaks. Warnings are bankwx's advice: duplicate keys, names the client cuts,
    CLICK keys that no keyword rule answers, tag ids that do not exist. Nothing is sent.
    """
    cli = get_cli(ctx)
    check = menus.check_file(cli.app, cli.with_account(account), file)
    cli.for_json(check, fmt)
    if check.rows():
        cli.for_people(fmt, rows=check.rows(), columns=["level", "path", "message", "limit"])
    check.raise_for_errors()
    n = len(check.report.warnings)
    suffix = f" ({n} warning{'' if n == 1 else 's'})" if n else ""
    cli.say(f"{file}: valid; WeChat would accept it{suffix}.")


@app.command(
    epilog="Examples:\n\n  bankwx menu plan menu.yaml\n\n"
    "  bankwx menu plan menu.yaml --exit-code --format json"
)
def plan(
    ctx: typer.Context,
    file: FileArgument,
    exit_code: Annotated[
        bool,
        typer.Option(
            "--exit-code", help="Exit 5 when the live menu differs from the file, else 0."
        ),
    ] = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Show how the live menu differs from a file: added, removed, changed, moved buttons.

    Reads the live menu from WeChat (menu/get); changes nothing.
    """
    cli = get_cli(ctx)
    result = menus.plan(cli.app, cli.with_account(account), file)
    _show_plan(cli, result, fmt)
    cli.for_json(result, fmt)
    if result.is_empty:
        cli.say(f"No changes: the live menu of '{result.account}' matches {file}.")
    elif exit_code:
        raise typer.Exit(DIFFERENCES)


@app.command(
    epilog="Examples:\n\n  bankwx menu deploy menu.yaml --dry-run\n\n"
    "  bankwx menu deploy menu.yaml --yes --account main"
)
def deploy(
    ctx: typer.Context,
    file: FileArgument,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Publish a menu file as the account's live menu, conditional menus included.

    Validates (an invalid file makes no call to WeChat), shows the plan, asks, then creates the
    default menu and the conditional menus and records the version. With approval required
    for menus, the deploy is submitted as a pending version instead.
    """
    cli = get_cli(ctx)
    result = menus.plan_deploy(cli.app, cli.with_account(account), file)
    _show_plan(cli, result, fmt)
    if dry_run or result.is_empty:
        cli.for_json(menus.MenuOutcome(result, dry_run), fmt)
        cli.say(
            "Dry run: nothing was sent to WeChat."
            if dry_run
            else f"Nothing to deploy: the live menu of '{result.account}' matches {file}."
        )
        return
    if not result.needs_approval:
        cli.confirm(f"Deploy this menu to '{result.account}'?", yes=yes)
    done = menus.deploy(cli.app, result)
    cli.for_json(menus.MenuOutcome(result, False, done.version, done.state), fmt)
    if done.state == "pending":
        cli.say(
            f"Submitted menu version {done.version} for approval; nothing changed on WeChat. "
            f"Another operator approves it with: bankwx menu approve {done.version} "
            f"--account {done.account}"
        )
        return
    cli.say(f"Deployed menu version {done.version} to '{done.account}'.")
    cli.say(menus.CLIENT_CACHE_NOTE)


@app.command(
    epilog="Examples:\n\n  bankwx menu pull\n\n  bankwx menu pull -o live-menu.yaml --account main"
)
def pull(
    ctx: typer.Context,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write to this file (.yaml/.yml as YAML, else JSON).",
        ),
    ] = None,
    account: AccountOption = None,
) -> None:
    """Write the live menu in menu/get's shape (without menuids), to stdout or a file.

    A pulled file planned against the same live menu shows no change.
    """
    cli = get_cli(ctx)
    pulled = menus.pull(cli.app, cli.with_account(account), output)
    if output is None:
        sys.stdout.write(menus.dump(pulled, None))
        return
    menus.write(pulled, output)
    cli.say(f"Wrote the live menu to {output}.")


@app.command(
    epilog="Examples:\n\n  bankwx menu history\n\n  bankwx menu history --limit 5 --format json"
)
def history(
    ctx: typer.Context,
    limit: Annotated[int | None, limit_option("Show the newest N versions.")] = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """List the account's menu versions, newest first: state, who, when, hash, what is live."""
    cli = get_cli(ctx)
    versions = menus.history(cli.app, cli.with_account(account), limit)
    cli.for_json(versions, fmt)
    cli.for_people(
        fmt,
        rows=[v.row() for v in versions],
        columns=HISTORY_COLUMNS,
        empty="No menu versions yet. Deploy one with bankwx menu deploy FILE.",
    )


@app.command(
    epilog="Examples:\n\n  bankwx menu rollback --yes\n\n"
    "  bankwx menu rollback 3 --dry-run --account main"
)
def rollback(
    ctx: typer.Context,
    version: Annotated[
        int | None,
        typer.Argument(
            help="Version to restore (default: the one before the live one).", min=1, max=MAX_INT
        ),
    ] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Restore a menu version that was live before; recorded as a new version.

    A rollback restores content that was deployed (and so approved) before: it needs no new
    approval.
    """
    cli = get_cli(ctx)
    result = menus.plan_rollback(cli.app, cli.with_account(account), version)
    _show_plan(cli, result, fmt)
    if dry_run:
        cli.for_json(menus.MenuOutcome(result, dry_run=True), fmt)
        cli.say("Dry run: nothing was sent to WeChat.")
        return
    cli.confirm(f"Roll '{result.account}' back to menu version {result.rollback_of}?", yes=yes)
    done = menus.rollback(cli.app, result)
    cli.for_json(menus.MenuOutcome(result, False, done.version, done.state), fmt)
    cli.say(
        f"Rolled '{done.account}' back to menu version {result.rollback_of} "
        f"(recorded as version {done.version})."
    )
    cli.say(menus.CLIENT_CACHE_NOTE)


@app.command(epilog="Examples:\n\n  bankwx menu delete --yes\n\n  bankwx menu delete --dry-run")
def delete(
    ctx: typer.Context,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    account: AccountOption = None,
) -> None:
    """Delete the live menu, conditional menus included (followers then see no menu)."""
    cli = get_cli(ctx)
    name, live = menus.plan_delete(cli.app, cli.with_account(account))
    if live.spec is None:
        cli.say(f"Account '{name}' has no menu on WeChat; nothing to delete.")
        return
    if dry_run:
        cli.say(f"Dry run: would delete the live menu of '{name}' ({live.describe()}).")
        return
    cli.confirm(f"Delete the live menu of '{name}' ({live.describe()})?", yes=yes)
    removed = menus.delete(cli.app, name)
    cli.say(f"Deleted the live menu of '{name}' ({removed.describe()}).")
    cli.say("Followers stop seeing it within about five minutes (the client's cache).")


@app.command(
    epilog="Examples:\n\n  bankwx menu approve 4\n\n"
    "  bankwx menu approve 4 --dry-run --account main"
)
def approve(
    ctx: typer.Context,
    version: VersionArgument,
    dry_run: DryRunOption = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Approve a pending menu version and deploy it (maker-checker: not your own)."""
    cli = get_cli(ctx)
    result = menus.plan_approve(cli.app, cli.with_account(account), version)
    _show_plan(cli, result, fmt)
    if dry_run:
        cli.for_json(menus.MenuOutcome(result, True, version, "pending"), fmt)
        cli.say("Dry run: nothing was approved or sent to WeChat.")
        return
    done = menus.approve(cli.app, result)
    cli.for_json(menus.MenuOutcome(result, False, done.version, done.state), fmt)
    cli.say(f"Approved and deployed menu version {done.version} to '{done.account}'.")
    cli.say(menus.CLIENT_CACHE_NOTE)


@app.command(
    epilog="Examples:\n\n  bankwx menu reject 4 --reason '按钮名称有误'\n\n"
    "  bankwx menu reject 4 --account main"
)
def reject(
    ctx: typer.Context,
    version: VersionArgument,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why, for the submitter and the audit log.")
    ] = None,
    account: AccountOption = None,
) -> None:
    """Reject a pending menu version; nothing changes on WeChat."""
    cli = get_cli(ctx)
    done = menus.reject(cli.app, cli.with_account(account), version, reason)
    cli.say(f"Rejected menu version {done.version} of '{done.account}'.")
