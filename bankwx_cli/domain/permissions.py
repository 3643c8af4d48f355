"""Roles and their permissions (dotted names, shell-style wildcards), checked by the row.

An operator holds a role and, optionally, a list of accounts (``operator add --accounts``). A
permission is held on an account when the role allows it and the account is one of the
operator's (or the operator is not limited to some accounts). An operator who is not in the
store has no permission at all. Every refusal is audited, in a transaction of its own, and
raises PermissionDenied (exit 4).

Three checks, one per situation:

- ``require(app, permission, account)``: before any lookup, for a command that names its
  account (or none). What ``account=None`` means depends on the permission:

  * a *global* permission (areas in ``GLOBAL_AREAS``: accounts, operators, organisations, the
    audit log, the store file) is not about one account's rows: ``None`` checks the role only;
  * an *account-scoped* permission (every other area: broadcasts, keywords, the outbox, menus,
    followers, tags, templates, messages...) with ``None`` means "every account of the store":
    an operator limited to some accounts holds it only when the store has no account outside
    their list. That is what a caller that resolves the default account, or acts on every
    account (``outbox run``, ``broadcast run-due``), needs. A refusal names the accounts outside
    the list in the audit entry and tells the operator to name one of theirs with --account.

- ``load_row(app, permission, load, account_of, ...)``: for a command that acts on a row by its
  id (a broadcast, a keyword rule, an outbox unit). The role is checked before the lookup (so a
  role that lacks the permission learns nothing about what exists); then the row is loaded (a
  missing row is the caller's NotFoundError, as before); then the permission is checked on the
  *row's* account with ``require_row``; then a named ``--account`` that is not the row's is
  treated as not found (as before). Call it before opening the transaction of the change, then
  load the row again inside that transaction for its current state: a row never changes account.

- ``visible_accounts(app, permission)``: for a list over every account (no --account): the
  accounts whose rows a limited operator sees (their own), or None for every account.

- ``require_row(app, permission, row_account, target=...)``: the last step on its own, for a
  caller that has loaded its row another way. The refusal is audited with ``target`` set to the
  row's account and ``params`` naming the row, so ``bankwx audit --operator X`` shows whose row
  it was.

``deny_own_approval`` is the maker-checker refusal shared by menus and broadcasts.
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, NoReturn, TypeVar

from bankwx_cli.domain import audit
from bankwx_cli.errors import BankwxError, OwnApprovalDenied, PermissionDenied

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.models.accounts import Operator

Row = TypeVar("Row")

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
            "branch.manage",
            "alert.rule",
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
        (
            "account.read",
            "agent.read",
            "agent.work",
            "messages.read",
            "follower.read",
            "backend.read",
            "branch.read",
        ),
    ),
    "supervisor": (
        "Agent oversight and reports.",
        ("*.read", "agent.work", "agent.supervise", "messages.export", "alert.show"),
    ),
    "auditor": (
        "Read-only: everything, and the audit log.",
        ("*.read", "audit.view", "store.check", "alert.show"),
    ),
}

# Areas whose permissions are not about one account's rows: with no account named, the role
# alone decides. Every other area is account-scoped.
GLOBAL_AREAS = frozenset({"account", "operator", "org", "role", "audit", "store", "backend"})

# Changes to who may do what, and to the set of accounts: only an operator with every account
# may make them, whatever the role. Otherwise an administrator limited to some accounts could
# lift their own limit (operator update --all-accounts) or make an unlimited operator.
UNLIMITED_ONLY = frozenset(
    {
        "operator.add",
        "operator.update",
        "operator.remove",
        "org.add",
        "account.add",
        "store.fix",
        "store.identity",
        "backend.manage",  # the store's one back-end serves every account
    }
)


def role_allows(role: str, permission: str) -> bool:
    _, patterns = ROLES.get(role, ("", ()))
    return any(fnmatchcase(permission, p) for p in patterns)


def is_account_scoped(permission: str) -> bool:
    """True unless the permission's area is one of GLOBAL_AREAS."""
    return permission.partition(".")[0] not in GLOBAL_AREAS


def _deny(
    app: AppContext,
    permission: str,
    target: str,
    params: dict[str, object],
    detail: str = "",
) -> NoReturn:
    """Audit the refusal (in a transaction of its own) and raise PermissionDenied, whose
    message ends with who the acting operator is and how to act as another."""
    if not app.store.read_only:  # a store nobody may write cannot keep the refusal
        with app.store.transaction():
            audit.record(app, action=permission, target=target, params=params, outcome="denied")
    who = app.identity
    known = app.store.operators.get(who.operator) is not None
    raise PermissionDenied(who.operator, permission, f"{detail}. {who.explain(known)}")


def _holder(app: AppContext, permission: str, target: str = "") -> Operator:
    """The acting operator, when their role allows the permission (else audited refusal).

    In ``identity os`` mode a login user not mapped to the operator it claims (or to any)
    holds nothing: refused before the role is looked at.
    """
    who = app.identity
    if who.refusal is not None:
        _deny(
            app,
            permission,
            target,
            {"reason": "login user not mapped to the operator", "os_user": who.os_user},
        )
    operator = app.store.operators.get(who.operator)
    if operator is None or not role_allows(operator.role, permission):
        _deny(app, permission, target, {"reason": "not permitted"})
    return operator


def require(app: AppContext, permission: str, account: str | None = None) -> None:
    """Raise PermissionDenied (exit 4) unless the acting operator holds permission on account.

    ``account=None``: see the module docstring (role only for a global permission; every
    account of the store for an account-scoped one). Call it before opening the transaction of
    the change: the refusal is audited in a transaction of its own, which must not be rolled
    back with the refused change.
    """
    operator = _holder(app, permission, account or "")
    limits = operator.accounts
    if limits is None:
        return
    if permission in UNLIMITED_ONLY:
        _deny(
            app,
            permission,
            account or "",
            {"reason": "limited to some accounts", "accounts": list(limits)},
            f": it is limited to some accounts ({', '.join(limits) or 'none'}), and only an "
            "operator with every account may do this",
        )
    if account is not None:
        if account not in limits:
            _deny(
                app,
                permission,
                account,
                {"reason": "account not permitted", "account": account},
                f" on account '{account}'",
            )
        return
    if not is_account_scoped(permission):
        return
    outside = sorted(set(app.store.accounts.names()) - set(limits))
    if outside:
        _deny(
            app,
            permission,
            "",
            {"reason": "not permitted on every account", "accounts": outside},
            f" on every account: name one of yours ({', '.join(limits) or 'none'}) with --account",
        )


def visible_accounts(app: AppContext, permission: str) -> tuple[str, ...] | None:
    """For a list over every account: check the role (audited refusal), then return the
    accounts whose rows the operator may see, or None for every account.

    A list command with no --account shows a limited operator the rows of their own accounts
    only; with --account, use ``require(app, permission, account)`` instead.
    """
    return _holder(app, permission).accounts


def require_row(
    app: AppContext, permission: str, row_account: str, *, target: str, role_checked: bool = False
) -> None:
    """Raise PermissionDenied (exit 4) unless the operator holds permission on the account of
    the row being acted on. Call it after loading the row and before changing it.

    The refusal is audited with the row's account as target and ``target`` (e.g. "broadcast 7")
    in the params. ``role_checked``: the role was checked already (by ``load_row``).
    """
    operator = (
        app.store.operators.get(app.operator)
        if role_checked
        else _holder(app, permission, row_account)
    )
    if operator is None:  # removed meanwhile
        _deny(app, permission, row_account, {"reason": "not permitted", "row": target})
    if operator.accounts is not None and row_account not in operator.accounts:
        _deny(
            app,
            permission,
            row_account,
            {"reason": "account not permitted", "account": row_account, "row": target},
            f" on account '{row_account}'",
        )


def load_row(
    app: AppContext,
    permission: str,
    load: Callable[[], Row | None],
    account_of: Callable[[Row], str],
    *,
    target: str,
    missing: Callable[[], BankwxError],
    account: str | None = None,
) -> Row:
    """The row an id names, checked: role first (before the lookup), then the row's account.

    ``load`` returns the row or None; ``account_of`` gives the account a row belongs to;
    ``target`` names the row for the audit log ("broadcast 7"); ``missing`` builds the error of
    a row that does not exist (NotFoundError, as the command always said). ``account`` is the
    ``--account`` the operator named, if any: checked before the lookup, and a row of another
    account is then not found (after the row check, so that an operator who may not use the
    row's account is refused, exit 4, whatever they named).
    """
    if account is not None:
        require(app, permission, account)
    else:
        _holder(app, permission)
    row = load()
    if row is None:
        raise missing()
    owner = account_of(row)
    require_row(app, permission, owner, target=target, role_checked=True)
    if account is not None and owner != account:
        raise missing()
    return row


def deny_own_approval(
    app: AppContext,
    permission: str,
    target: str,
    params: dict[str, object],
    message: str,
) -> NoReturn:
    """Maker-checker: audit the refusal (outcome denied) and raise OwnApprovalDenied (exit 4)."""
    with app.store.transaction():
        audit.record(app, action=permission, target=target, params=params, outcome="denied")
    raise OwnApprovalDenied(app.operator, permission, message)
