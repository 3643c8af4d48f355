"""Operators: the staff (and services) acting on the store, each with a role."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bankwx_cli.clock import iso
from bankwx_cli.domain import audit
from bankwx_cli.domain.permissions import ROLES, require
from bankwx_cli.errors import ConflictError, NotFoundError, ValidationError
from bankwx_cli.models.accounts import Operator

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext

_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


def _validate_operator_name(name: str) -> str:
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


def bootstrap_admin(app: AppContext, name: str) -> None:
    """The first administrator, made by init (no permission check: the store is empty)."""
    _validate_operator_name(name)
    now = iso(app.clock.now())
    with app.store.transaction():
        if app.store.operators.count():
            raise ConflictError("the store already has operators.")
        app.store.operators.insert(name, "admin", None, None, now)
        audit.record(app, "operator.add", name, {"role": "admin", "by": "init"})


def add(
    app: AppContext,
    name: str,
    role: str,
    org: str | None = None,
    accounts: list[str] | None = None,
) -> Operator:
    require(app, "operator.add")
    _validate_operator_name(name)
    _validate_role(role)
    with app.store.transaction():
        if app.store.operators.get(name) is not None:
            raise ConflictError(f"an operator named '{name}' exists. See bankwx operator list.")
        org_id = _org_id(app, org)
        _check_accounts(app, accounts)
        app.store.operators.insert(name, role, org_id, accounts, iso(app.clock.now()))
        audit.record(app, "operator.add", name, {"role": role, "org": org, "accounts": accounts})
    return get(app, name)


def get(app: AppContext, name: str) -> Operator:
    operator = app.store.operators.get(name)
    if operator is None:
        raise NotFoundError(f"no operator named '{name}'. See bankwx operator list.")
    return operator


def list_(app: AppContext) -> list[Operator]:
    require(app, "operator.read")
    return app.store.operators.all()


def update(
    app: AppContext,
    name: str,
    role: str | None = None,
    org: str | None = None,
    accounts: list[str] | None = None,
    all_accounts: bool = False,
) -> Operator:
    require(app, "operator.update")
    values: dict[str, object] = {}
    if role is not None:
        values["role"] = _validate_role(role)
    with app.store.transaction():
        current = get(app, name)
        if org is not None:
            values["org_id"] = _org_id(app, org)
        if accounts is not None:
            _check_accounts(app, accounts)
            values["accounts"] = accounts
        if all_accounts:
            values["accounts"] = None
        if not values:
            raise ValidationError("nothing to change: give --role, --org or --accounts.")
        if current.role == "admin" and values.get("role", "admin") != "admin":
            _keep_one_admin(app, name)
        values["updated_at"] = iso(app.clock.now())
        app.store.operators.update(name, values)
        shown = {k: v for k, v in values.items() if k != "updated_at"}
        audit.record(app, "operator.update", name, shown)
    return get(app, name)


def _keep_one_admin(app: AppContext, leaving: str) -> None:
    admins = [o.name for o in app.store.operators.all() if o.role == "admin"]
    if admins == [leaving]:
        raise ConflictError(
            f"'{leaving}' is the last administrator. Make another operator admin first."
        )


def remove(app: AppContext, name: str) -> None:
    require(app, "operator.remove")
    with app.store.transaction():
        operator = get(app, name)
        if operator.role == "admin":
            _keep_one_admin(app, name)
        app.store.operators.delete(name)
        audit.record(app, "operator.remove", name, {})
