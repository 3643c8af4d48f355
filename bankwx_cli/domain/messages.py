"""The conversation log: read, purge by retention, export one follower's entries (PIPL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bankwx_cli.clock import iso
from bankwx_cli.domain import account_settings, accounts, audit
from bankwx_cli.domain.permissions import require
from bankwx_cli.errors import ValidationError
from bankwx_cli.models.messages import LogEntry, Purged

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext


def list_(
    app: AppContext,
    account: str | None = None,
    openid: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = 100,
) -> list[LogEntry]:
    """Entries newest first; card, phone and ID numbers were masked when written."""
    require(app, "messages.read", account)
    name = accounts.get(app, account).name if account else None
    if limit is not None and limit < 1:
        raise ValidationError("--limit must be 1 or more.")
    return app.store.messages.all(
        account=name,
        openid=openid,
        since=iso(since) if since else None,
        until=iso(until) if until else None,
        limit=limit,
    )


def retention_days(app: AppContext, account_name: str) -> int:
    """Days the account's log keeps entries (the setting retention_days)."""
    return int(account_settings.value(accounts.get(app, account_name), "retention_days"))


def purge(
    app: AppContext, before: datetime | None, account: str | None, dry_run: bool = False
) -> list[Purged]:
    """Delete entries older than before (or each account's retention), in short batches, and
    purge the payloads of the account's finished outbox units and the data of its alerts
    older than the same time."""
    require(app, "messages.purge", account)
    names = [accounts.get(app, account).name] if account else app.store.accounts.names()
    done: list[Purged] = []
    for name in names:
        cutoff = before or app.clock.now() - timedelta(days=retention_days(app, name))
        if dry_run:
            would = app.store.messages.count_before(name, iso(cutoff))
            done.append(Purged(name, would, dry_run=True))
            continue
        total = 0
        while n := app.store.messages.purge_before(name, iso(cutoff)):
            total += n
        done.append(Purged(name, total))
        # the payloads of finished outbox units (replies, alerts, broadcasts) go with the log
        payloads = app.store.outbox.purge_payloads_before(name, iso(cutoff))
        from bankwx_cli.domain import alerts  # here: only purge needs the alerts area

        alert_data = alerts.purge_before(app, name, cutoff)  # alerts' data and texts, likewise
        with app.store.transaction():
            audit.record(
                app,
                "messages.purge",
                name,
                {"before": iso(cutoff), "deleted": total, "outbox_payloads": payloads,
                 "alert_data": alert_data},
            )  # fmt: skip
    return done


def export(app: AppContext, openid: str, account: str | None) -> list[LogEntry]:
    """Every entry of one follower, oldest first (a customer's request under PIPL)."""
    require(app, "messages.export", account)
    rows = list_(app, account=account, openid=openid, limit=None)
    with app.store.transaction():
        audit.record(app, "messages.export", openid, {"account": account, "entries": len(rows)})
    return list(reversed(rows))
