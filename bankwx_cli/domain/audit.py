"""Audit trail: every state-changing command writes a row in the same transaction as the change."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bankwx_cli.clock import iso

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.models.audit import AuditEntry

_SECRET_KEY = re.compile(r"secret|token|aes|password|api_key|master", re.IGNORECASE)


def redact(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters with secret values removed (the key stays, the value becomes '****')."""
    clean: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if _SECRET_KEY.search(key) and key not in {"token_mode"}:
            clean[key] = "****"
        elif isinstance(value, dict):
            clean[key] = redact(value)
        else:
            clean[key] = value
    return clean


def record(
    app: AppContext,
    action: str,
    target: str,
    params: dict[str, Any],
    outcome: str = "ok",
    operator: str | None = None,
) -> None:
    """Append an audit row, with the login user and host. Call inside the change's
    transaction. ``operator`` overrides the acting operator (``app.operator``) for a change a
    follower made themselves (``follower:OPENID``, a binding through the page or a chat)."""
    who = app.identity
    app.store.audit.append(
        at=iso(app.clock.now()),
        operator=who.operator if operator is None else operator,
        action=action,
        target=target,
        params=redact(params),
        outcome=outcome,
        os_user=who.os_user,
        host=who.host,
    )


def query(
    app: AppContext,
    since: datetime | None = None,
    until: datetime | None = None,
    operator: str | None = None,
    action: str | None = None,
    limit: int | None = None,
    oldest_first: bool = False,
) -> list[AuditEntry]:
    """Entries matching the filters, newest first (``oldest_first`` reverses); ``limit`` keeps
    the first N of that order. Raises PermissionDenied without audit.view."""
    from bankwx_cli.domain.permissions import require

    require(app, "audit.view")
    return app.store.audit.all(
        since=iso(since) if since else None,
        until=iso(until) if until else None,
        operator=operator,
        action=action,
        limit=limit,
        oldest_first=oldest_first,
    )
