"""What the shell completes: names and ids the acting operator may see, read without a trace.

A completion runs on every Tab, so it checks permissions as the lists do (the role, then the
operator's accounts) but records nothing: a refused completion completes nothing, and is not an
audited refusal. It only reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bankwx_cli.domain.permissions import role_allows

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext

#: What each kind of value needs the operator's role to allow.
KINDS = {"account": "account.read", "operator": "operator.read", "broadcast": "broadcast.read"}


def values(app: AppContext, kind: str, account: str | None = None) -> list[str]:
    """The values of kind ('account', 'operator', 'broadcast') the acting operator may see;
    broadcasts are those of ``account`` when given, newest first. Nothing when the role does
    not allow reading them; raises whatever opening the store raises."""
    operator = app.store.operators.get(app.operator)
    if operator is None or not role_allows(operator.role, KINDS[kind]):
        return []
    limits = operator.accounts
    if kind == "operator":
        return [o.name for o in app.store.operators.all()]
    if kind == "account":
        return [n for n in app.store.accounts.names() if limits is None or n in limits]
    rows = app.store.broadcasts.all(account, None)
    return [str(b.id) for b in rows if limits is None or b.account in limits]
