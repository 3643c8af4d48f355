"""Operators: the staff (and services) acting on the store, each with a role."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from bankwx_cli.clock import iso
from bankwx_cli.domain import audit
from bankwx_cli.domain.permissions import ROLES, require
from bankwx_cli.errors import ConflictError, NotFoundError, ValidationError
from bankwx_cli.models.accounts import Operator
from bankwx_cli.models.changes import KEEP, given
from bankwx_cli.models.operators import OperatorUpdate

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext

_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_OS_USER = re.compile(r"[A-Za-z0-9._@\\][A-Za-z0-9._@:\\-]{0,63}")


def validate_operator_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValidationError(
            f"operator name '{name}' is invalid: use 1 to 64 letters, digits or . _ @ -."
        )
    return name


def _validate_role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError(
            f"role '{role}' does not exist: use one of {', '.join(ROLES)}. See bankwx role list."
        )
    return role


def _org_id(app: AppContext, org: str | None) -> int | None:
    if org is None:
        return None
    org_id = app.store.orgs.get_id(org)
    if org_id is None:
        raise NotFoundError(f"no organisation named '{org}'. See bankwx org list.")
    return org_id


def _check_accounts(app: AppContext, accounts: list[str] | None) -> None:
    known = set(app.store.accounts.names())
    for name in accounts or []:
        if name not in known:
            raise NotFoundError(f"no account named '{name}'. See bankwx account list.")


def _validate_os_users(os_users: list[str]) -> list[str]:
    for user in os_users:
        if not _OS_USER.fullmatch(user):
            raise ValidationError(
                f"login user '{user}' is invalid: use 1 to 64 letters, digits or . _ @ : - \\ "
                "(not starting with -)."
            )
    return sorted(set(os_users))


def _check_os_users_free(app: AppContext, name: str, os_users: list[str]) -> None:
    """One login user acts as one operator: refuse a user mapped to another operator."""
    for user in os_users:
        other = app.store.os_users.operator_of(user)
        if other is not None and other != name:
            raise ConflictError(
                f"login user '{user}' acts as operator '{other}' already (one login user, one "
                f"operator). Unmap it first: bankwx operator update {other} --no-os-users, or "
                f"give {other} its other users with --os-user."
            )


def bootstrap_admin(app: AppContext, name: str, os_user: str | None = None) -> None:
    """The first administrator, made by init (no permission check: the store is empty);
    ``os_user``: the login user it is mapped to (``init --identity os``)."""
    validate_operator_name(name)
    now = iso(app.clock.now())
    with app.store.transaction():
        if app.store.operators.count():
            raise ConflictError("the store already has operators.")
        app.store.operators.insert(name, "admin", None, None, now)
        if os_user is not None:
            app.store.os_users.replace(name, [os_user], now)
        audit.record(
            app, "operator.add", name, {"role": "admin", "by": "init", "os_users": os_user}
        )


def add(
    app: AppContext,
    name: str,
    role: str,
    org: str | None = None,
    accounts: list[str] | None = None,
    os_users: list[str] | None = None,
) -> Operator:
    """Add an operator. ``os_users``: the login users who act as it (``identity os``).

    Raises PermissionDenied, ValidationError, ConflictError (name taken; a login user mapped to
    another operator), NotFoundError (organisation, account)."""
    require(app, "operator.add")
    validate_operator_name(name)
    _validate_role(role)
    users = _validate_os_users(os_users or [])
    with app.store.transaction():
        if app.store.operators.get(name) is not None:
            raise ConflictError(f"an operator named '{name}' exists. See bankwx operator list.")
        org_id = _org_id(app, org)
        _check_accounts(app, accounts)
        _check_os_users_free(app, name, users)
        now = iso(app.clock.now())
        app.store.operators.insert(name, role, org_id, accounts, now)
        if users:
            app.store.os_users.replace(name, users, now)
        audit.record(
            app,
            "operator.add",
            name,
            {"role": role, "org": org, "accounts": accounts, "os_users": users or None},
        )
    return get(app, name)


def get(app: AppContext, name: str) -> Operator:
    operator = app.store.operators.get(name)
    if operator is None:
        raise NotFoundError(f"no operator named '{name}'. See bankwx operator list.")
    return replace(operator, os_users=app.store.os_users.of(name))


def list_(app: AppContext) -> list[Operator]:
    require(app, "operator.read")
    users = app.store.os_users.by_operator()
    return [replace(o, os_users=users.get(o.name, ())) for o in app.store.operators.all()]


def update(
    app: AppContext,
    name: str,
    role: str | None = None,
    org: str | None = None,
    accounts: list[str] | None = None,
    all_accounts: bool = False,
    os_users: list[str] | None = None,
    no_os_users: bool = False,
) -> Operator:
    """Change an operator. ``os_users`` replaces its login users; ``no_os_users`` removes them.

    In ``identity os`` mode a change that would leave no administrator a login user is refused
    (nobody could administer the store). Raises as ``add`` does, and NotFoundError."""
    require(app, "operator.update")
    change = OperatorUpdate(role=KEEP if role is None else _validate_role(role))
    users = None if os_users is None else _validate_os_users(os_users)
    if no_os_users:
        if users:
            raise ValidationError("give --os-user or --no-os-users, not both.")
        users = []
    with app.store.transaction():
        current = get(app, name)
        if org is not None:
            change = replace(change, org_id=_org_id(app, org))
        if accounts is not None:
            _check_accounts(app, accounts)
            change = replace(change, accounts=tuple(accounts))
        if all_accounts:
            change = replace(change, accounts=None)
        shown = given(change)
        if not shown and users is None:
            raise ValidationError(
                "nothing to change: give --role, --org, --accounts, --os-user or --no-os-users."
            )
        if current.role == "admin" and change.role not in (KEEP, "admin"):
            _keep_one_admin(app, name)
        now = iso(app.clock.now())
        if shown:
            app.store.operators.update(name, replace(change, updated_at=now))
        if users is not None:
            _check_os_users_free(app, name, users)
            app.store.os_users.replace(name, users, now)
            app.store.operators.update(name, OperatorUpdate(updated_at=now))
            shown["os_users"] = users
        _keep_one_mapped_admin(app)
        audit.record(app, "operator.update", name, shown)
    return get(app, name)


def _keep_one_admin(app: AppContext, leaving: str) -> None:
    admins = [o.name for o in app.store.operators.all() if o.role == "admin"]
    if admins == [leaving]:
        raise ConflictError(
            f"'{leaving}' is the last administrator. Make another operator admin first."
        )


def _keep_one_mapped_admin(app: AppContext) -> None:
    """identity os: some unlimited administrator must keep a login user (call in the change's
    transaction, after it: the change is rolled back when it would lock everyone out)."""
    from bankwx_cli.domain.identity import store_mode

    if store_mode(app) != "os" or mapped_admins(app):
        return
    raise ConflictError(
        "the store requires real identity (identity os), and this would leave no administrator "
        "with a login user: nobody could administer it. Map another administrator first "
        "(bankwx operator update NAME --os-user USER)."
    )


def mapped_admins(app: AppContext) -> list[str]:
    """Administrators with every account and at least one login user."""
    users = app.store.os_users.by_operator()
    return [
        o.name
        for o in app.store.operators.all()
        if o.role == "admin" and o.accounts is None and users.get(o.name)
    ]


def remove(app: AppContext, name: str) -> None:
    require(app, "operator.remove")
    with app.store.transaction():
        operator = get(app, name)
        if operator.role == "admin":
            _keep_one_admin(app, name)
        app.store.os_users.replace(name, [], iso(app.clock.now()))
        app.store.operators.delete(name)
        _keep_one_mapped_admin(app)
        audit.record(app, "operator.remove", name, {})
