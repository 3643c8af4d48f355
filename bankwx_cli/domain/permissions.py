"""Roles and their permissions (dotted names, shell-style wildcards).

The check comes before any lookup, so a refusal reveals nothing about what exists. An operator
who is not in the store has no permission at all. A refusal is itself audited.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from bankwx_cli.domain import audit
from bankwx_cli.errors import PermissionDenied

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext

ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("Everything, on the accounts the operator may use.", ("*",)),
    "publisher": (
        "Menus, keyword rules, broadcasts (create, submit, send), templates, tags.",
        (
            "*.read",
            "menu.deploy",
            "menu.rollback",
            "menu.delete",
            "keyword.*",
            "broadcast.create",
            "broadcast.submit",
            "broadcast.preview",
            "broadcast.cancel",
            "broadcast.send",
            "template.*",
            "follower.sync",
            "follower.tag",
            "tag.*",
            "outbox.run",
        ),
    ),
    "approver": (
        "Approves or rejects what publishers submit (menus, broadcasts).",
        (
            "*.read",
            "menu.approve",
            "menu.reject",
            "broadcast.approve",
            "broadcast.reject",
            "broadcast.send",
            "broadcast.cancel",
            "outbox.run",
        ),
    ),
    "agent": (
        "Serves followers in agent sessions.",
        ("account.read", "agent.work", "messages.read", "follower.read"),
    ),
    "supervisor": (
        "Agent oversight and reports.",
        ("*.read", "agent.*", "report.*", "messages.export"),
    ),
    "auditor": (
        "Read-only: everything, and the audit log.",
        ("*.read", "audit.view", "store.check"),
    ),
}


def role_names() -> list[str]:
    return list(ROLES)


def role_allows(role: str, permission: str) -> bool:
    _, patterns = ROLES.get(role, ("", ()))
    return any(fnmatchcase(permission, p) for p in patterns)


def require(app: AppContext, permission: str, account: str | None = None) -> None:
    """Raise PermissionDenied (exit 4) unless the acting operator holds permission.

    Call it before opening the transaction of the change: the refusal is audited in a
    transaction of its own, which must not be rolled back with the refused change.
    """
    operator = app.store.operators.get(app.operator)
    allowed = (
        operator is not None
        and role_allows(operator.role, permission)
        and (account is None or operator.accounts is None or account in operator.accounts)
    )
    if allowed:
        return
    with app.store.transaction():
        audit.record(
            app,
            action=permission,
            target=account or "",
            params={"reason": "not permitted"},
            outcome="denied",
        )
    raise PermissionDenied(app.operator, permission)
