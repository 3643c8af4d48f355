"""`bankwx operator ...`, `bankwx org ...`, `bankwx role ...`: who may do what."""

from __future__ import annotations

from dataclasses import asdict
from enum import StrEnum
from typing import Annotated

import typer

from bankwx_cli.commands._cli import (
    FormatOption,
    YesOption,
    complete_operator,
    get_cli,
    split_csv,
)
from bankwx_cli.domain import operators, orgs, roles

app = typer.Typer(help="Operators (staff) and their roles.", no_args_is_help=True)
org_app = typer.Typer(help="Organisations: head office, branches.", no_args_is_help=True)
role_app = typer.Typer(help="Built-in roles and their permissions.", no_args_is_help=True)

OS_USER = typer.Option(
    "--os-user",
    help="A login (operating-system) user who acts as this operator when the store's identity "
    "is os; repeat for several. One login user acts as one operator.",
)


class Role(StrEnum):  # permissions.ROLES
    admin = "admin"
    publisher = "publisher"
    approver = "approver"
    agent = "agent"
    supervisor = "supervisor"
    auditor = "auditor"


NameArgument = Annotated[
    str, typer.Argument(help="Operator name.", autocompletion=complete_operator)
]


@app.command(
    epilog="Examples:\n\n  bankwx operator add bob --role approver --os-user bob\n\n"
    "  bankwx operator add carol --role publisher --org 上海分行 --accounts main,cards"
)
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Operator name (the login user, or a service).")],
    role: Annotated[Role, typer.Option("--role", help="Role; see bankwx role list.")],
    org: Annotated[str | None, typer.Option("--org", help="Organisation.")] = None,
    accounts: Annotated[
        str | None,
        typer.Option("--accounts", help="Comma-separated accounts this operator may use (all)."),
    ] = None,
    fmt: FormatOption = None,
    os_user: Annotated[list[str] | None, OS_USER] = None,
) -> None:
    """Add an operator with a role."""
    cli = get_cli(ctx)
    op = operators.add(cli.app, name, role, org=org, accounts=split_csv(accounts), os_users=os_user)
    cli.render_one(op, fmt=fmt, say=f"Added operator '{name}' as {role}.")


@app.command("list", epilog="Examples:\n\n  bankwx operator list --format json")
def list_(ctx: typer.Context, fmt: FormatOption = None) -> None:
    """List operators with their roles, organisations, accounts and login users."""
    cli = get_cli(ctx)
    rows = [
        {
            **asdict(o),
            "accounts": "all" if o.accounts is None else list(o.accounts),
            "os_users": list(o.os_users),
        }
        for o in operators.list_(cli.app)
    ]
    columns = ["name", "role", "org", "accounts", "os_users", "updated_at"]
    cli.render(rows, fmt=fmt, columns=columns)


@app.command(
    epilog="Examples:\n\n  bankwx operator update bob --role publisher\n\n"
    "  bankwx operator update bob --accounts main\n\n"
    "  bankwx operator update bob --os-user bob --os-user bob.adm"
)
def update(
    ctx: typer.Context,
    name: NameArgument,
    role: Annotated[Role | None, typer.Option("--role", help="New role.")] = None,
    org: Annotated[str | None, typer.Option("--org", help="New organisation.")] = None,
    accounts: Annotated[
        str | None, typer.Option("--accounts", help="Comma-separated accounts to limit to.")
    ] = None,
    all_accounts: Annotated[
        bool, typer.Option("--all-accounts", help="Lift the account limit.")
    ] = False,
    os_user: Annotated[list[str] | None, OS_USER] = None,
    no_os_users: Annotated[
        bool, typer.Option("--no-os-users", help="Map no login user to this operator.")
    ] = False,
) -> None:
    """Change an operator's role, organisation, accounts or login users.

    --os-user replaces the operator's login users (repeat it for several).
    """
    cli = get_cli(ctx)
    operators.update(
        cli.app,
        name,
        role=role,
        org=org,
        accounts=split_csv(accounts),
        all_accounts=all_accounts,
        os_users=os_user,
        no_os_users=no_os_users,
    )
    cli.say(f"Updated operator '{name}'.")


@app.command(epilog="Examples:\n\n  bankwx operator remove bob --yes")
def remove(
    ctx: typer.Context,
    name: NameArgument,
    yes: YesOption = False,
) -> None:
    """Remove an operator (the audit log keeps their past actions)."""
    cli = get_cli(ctx)
    cli.confirm(f"Remove operator '{name}'?", yes=yes)
    operators.remove(cli.app, name)
    cli.say(f"Removed operator '{name}'.")


@org_app.command(
    "add", epilog="Examples:\n\n  bankwx org add 总行\n\n  bankwx org add 上海分行 --parent 总行"
)
def org_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Organisation name.")],
    parent: Annotated[str | None, typer.Option("--parent", help="Parent organisation.")] = None,
) -> None:
    """Add an organisation (head office, branch)."""
    cli = get_cli(ctx)
    orgs.add(cli.app, name, parent)
    cli.say(f"Added organisation '{name}'.")


@org_app.command("list", epilog="Examples:\n\n  bankwx org list --format json")
def org_list(ctx: typer.Context, fmt: FormatOption = None) -> None:
    """List organisations."""
    cli = get_cli(ctx)
    cli.render(orgs.list_(cli.app), fmt=fmt, columns=["name", "parent"])


@role_app.command("list", epilog="Examples:\n\n  bankwx role list --format json")
def role_list(ctx: typer.Context, fmt: FormatOption = None) -> None:
    """List the built-in roles and their permissions."""
    cli = get_cli(ctx)
    cli.render(roles.list_(), fmt=fmt, columns=["role", "description", "permissions"])
