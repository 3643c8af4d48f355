"""`bankwx demo`: a guided end-to-end run on a throw-away store and the simulator."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from bankwx_cli.commands._cli import Cli, get_cli
from bankwx_cli.context import AppContext
from bankwx_cli.domain import accounts, operators, stores
from bankwx_cli.keys import MasterKey

DEMO_ACCOUNT = {
    "name": "demo-bank",
    "appid": "wxd0e1a2b3c4d5e6f7",
    "secret": "d0e1a2b3c4d5e6f7a8b9c0d1e2f3a4b5",
    "token": "demotoken2026",
    "original_id": "gh_d0e1a2b3c4d5",
    "aes_key": "DemoBankEncodingAESKey0123456789abcdefGHIJK",
}


def _step(cli: Cli, title: str) -> None:
    cli.say("")
    cli.say(f"== {title}")


def demo(
    ctx: typer.Context,
    keep: Annotated[
        Path | None,
        typer.Option("--keep", help="Keep the demo store in this folder instead of a temp one."),
    ] = None,
) -> None:
    """Run a guided tour of bankwx on a throw-away store and the built-in simulator.

    Examples:

      bankwx demo

      bankwx demo --keep ./demo-store
    """
    cli = get_cli(ctx)
    with tempfile.TemporaryDirectory(prefix="bankwx-demo-") as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        settings = cli.settings.with_(
            db=folder / "demo.db", operator="ops-alice", master_key=None, account=None
        )
        key = MasterKey.generate()
        app = AppContext(settings, key=key)
        try:
            _step(cli, "1. Create a store (its own master key, never your key file)")
            stores.init(app, "ops-alice")
            cli.say(f"Store: {settings.db}")
            _step(cli, "2. Add the bank's official account (secrets encrypted at rest)")
            accounts.add(app, **DEMO_ACCOUNT)
            cli.render([a.__dict__ for a in accounts.list_(app)], fmt="plain",
                       columns=["name", "appid", "original_id", "mode"])  # fmt: skip
            _step(cli, "3. Add operators: a publisher and an approver (maker-checker)")
            operators.add_org(app, "总行")
            operators.add(app, "ops-bob", "publisher", org="总行")
            operators.add(app, "ops-carol", "approver", org="总行")
            cli.render(operators.list_(app), fmt="plain", columns=["name", "role", "org"])
            _step(cli, "4. Every change is in the audit log, hash-chained")
            report = stores.check(app)
            cli.say(f"bankwx check: {'OK' if report.ok else report.problems}")
            cli.say("")
            cli.say("Demo finished.")
        finally:
            app.close()
