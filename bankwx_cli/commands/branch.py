"""`bankwx branch ...`: branches and ATMs (网点), and the nearest ones to a point."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bankwx_cli.commands._cli import (
    AccountOption,
    DryRunOption,
    FormatOption,
    YesOption,
    get_cli,
)
from bankwx_cli.domain import branches
from bankwx_cli.models.branches import Branch

app = typer.Typer(
    help="Branches and ATMs: import from CSV, list, show, add, remove, find the nearest.",
    no_args_is_help=True,
)

COLUMNS = ["id", "name", "type", "lat", "lng", "address", "phone", "hours", "services"]
NEAR_COLUMNS = ["id", "name", "type", "distance_m", "address", "hours", "phone"]


class BranchType(StrEnum):
    branch = "branch"
    atm = "atm"


IdArgument = Annotated[str, typer.Argument(help="The branch's id (the bank's own).")]
TypeOption = Annotated[
    BranchType | None, typer.Option("--type", help="Only branches or only ATMs.")
]
LatOption = Annotated[
    float, typer.Option("--lat", help="Latitude, degrees (-90 to 90).", min=-90.0, max=90.0)
]
LngOption = Annotated[
    float, typer.Option("--lng", help="Longitude, degrees (-180 to 180).", min=-180.0, max=180.0)
]


def _type(value: BranchType | None) -> str | None:
    return None if value is None else value.value


@app.command(
    "import",
    epilog="Examples:\n\n  bankwx branch import examples/branches.csv --dry-run\n\n"
    "  bankwx branch import branches.csv --valid-only --format json\n\n"
    "  bankwx branch import branches.csv --replace",
)
def import_(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV file (UTF-8, a BOM allowed) with the header "
            "id,name,type,lat,lng,address,phone,hours,services; services separated by ';'.",
            exists=True,
            dir_okay=False,
        ),
    ],
    valid_only: Annotated[
        bool,
        typer.Option("--valid-only", help="Import the valid rows even when some are bad."),
    ] = False,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Make the account's branches the file's: change those it names, remove the "
            "others (default: rows whose id the account has are skipped).",
        ),
    ] = False,
    dry_run: DryRunOption = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Import branches and ATMs from a CSV file, all or nothing, in one transaction.

    Any bad row (bad coordinates, unknown type, duplicate id, wrong header or encoding)
    imports nothing, unless --valid-only: then exactly the valid rows. Every bad line is
    named; the summary counts imported, skipped and bad rows; exit 1 when a row is bad.
    Coordinates are in the system of the account's location messages (GCJ-02 in mainland
    China).
    """
    cli = get_cli(ctx)
    result = branches.import_file(
        cli.app,
        cli.with_account(account),
        file,
        valid_only=valid_only,
        replace=replace,
        dry_run=dry_run,
    )
    report = result.report(file.name)
    cli.for_json(result, fmt)
    for failure in report.failures:
        cli.say(failure.message())
    if result.removed:
        cli.say(f"{'Would remove' if dry_run else 'Removed'} {result.removed} branches not in "
                "the file.")  # fmt: skip
    cli.say(report.summary())
    if report.exit_code:
        raise typer.Exit(report.exit_code)


@app.command(
    "list",
    epilog="Examples:\n\n  bankwx branch list\n\n  bankwx branch list --type atm --format json",
)
def list_(
    ctx: typer.Context,
    type_: TypeOption = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """List the account's branches and ATMs, by id."""
    cli = get_cli(ctx)
    rows = branches.list_(cli.app, cli.with_account(account), _type(type_))
    cli.render(rows, fmt=fmt, columns=COLUMNS, empty="No branches.")


@app.command(
    epilog="Examples:\n\n  bankwx branch add SH001 --name 人民广场支行 --type branch "
    "--lat 31.2304 --lng 121.4737 --hours '周一至周五 9:00-17:00'"
)
def add(
    ctx: typer.Context,
    branch_id: IdArgument,
    name: Annotated[str, typer.Option("--name", help="Name followers see.")],
    type_: Annotated[BranchType, typer.Option("--type", help="branch or atm.")],
    lat: LatOption,
    lng: LngOption,
    address: Annotated[str, typer.Option("--address", help="Street address.")] = "",
    phone: Annotated[str, typer.Option("--phone", help="Telephone number.")] = "",
    hours: Annotated[
        str, typer.Option("--hours", help="Opening hours, as followers see them.")
    ] = "",
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Add one branch or ATM to the account.

    Coordinates are in the system of the account's location messages (GCJ-02 in mainland
    China).
    """
    cli = get_cli(ctx)
    given = Branch("", branch_id, name, type_.value, lat, lng, address, phone, hours)
    added = branches.add(cli.app, cli.with_account(account), given)
    cli.render_one(added, fmt=fmt, say=f"Added branch '{added.id}' to '{added.account}'.")


@app.command(epilog="Examples:\n\n  bankwx branch show SH001 --format json")
def show(
    ctx: typer.Context,
    branch_id: IdArgument,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Show one branch or ATM of the account."""
    cli = get_cli(ctx)
    cli.render_one(branches.get(cli.app, cli.with_account(account), branch_id, "branch.read"),
                   fmt=fmt)  # fmt: skip


@app.command(epilog="Examples:\n\n  bankwx branch remove SH001 --yes")
def remove(
    ctx: typer.Context,
    branch_id: IdArgument,
    yes: YesOption = False,
    account: AccountOption = None,
) -> None:
    """Remove one branch or ATM from the account."""
    cli = get_cli(ctx)
    found = branches.get(cli.app, cli.with_account(account), branch_id, "branch.manage")
    cli.confirm(f"Remove branch '{found.id}' ({found.name}) from '{found.account}'?", yes=yes)
    branches.remove(cli.app, found.account, branch_id)
    cli.say(f"Removed branch '{found.id}' from '{found.account}'.")


@app.command(
    epilog="Examples:\n\n  bankwx branch nearest --lat 31.2304 --lng 121.4737\n\n"
    "  bankwx branch nearest --lat 31.23 --lng 121.47 --type atm --limit 3 --format json"
)
def nearest(
    ctx: typer.Context,
    lat: LatOption,
    lng: LngOption,
    type_: TypeOption = None,
    limit: Annotated[
        int,
        typer.Option("--limit", help="Branches to show, 1 to 100.", min=1, max=branches.MAX_LIMIT),
    ] = 5,
    radius_km: Annotated[
        float | None,
        typer.Option(
            "--radius-km",
            help="Look this far, km (default: the account's branch_radius_km).",
            min=0.001,
            max=20_016.0,
        ),
    ] = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Show the account's branches nearest a point, nearest first (ties by id).

    Distances are great-circle, in metres.
    """
    cli = get_cli(ctx)
    rows = branches.nearest(cli.app, cli.with_account(account), lat, lng, limit=limit,
                            type_=_type(type_), radius_km=radius_km)  # fmt: skip
    cli.render(rows, fmt=fmt, columns=None if cli.fmt(fmt) == "json" else NEAR_COLUMNS,
               empty="No branch within the radius.")  # fmt: skip
