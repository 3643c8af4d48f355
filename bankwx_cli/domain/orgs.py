"""Organisations: the head office and its branches, which operators belong to
(``bankwx org``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bankwx_cli.clock import iso
from bankwx_cli.domain import audit
from bankwx_cli.domain.permissions import require
from bankwx_cli.errors import ConflictError, NotFoundError, ValidationError
from bankwx_cli.models.operators import Org

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext


def add(app: AppContext, name: str, parent: str | None = None) -> Org:
    """Add an organisation under parent. Raises ValidationError, ConflictError (the name is
    taken), NotFoundError (no such parent)."""
    require(app, "org.add")
    if not name.strip() or len(name) > 64:
        raise ValidationError("organisation name must be 1 to 64 characters.")
    with app.store.transaction():
        if app.store.orgs.get_id(name) is not None:
            raise ConflictError(f"an organisation named '{name}' exists. See bankwx org list.")
        parent_id = None
        if parent is not None:
            parent_id = app.store.orgs.get_id(parent)
            if parent_id is None:
                raise NotFoundError(f"no organisation named '{parent}'. See bankwx org list.")
        app.store.orgs.insert(name, parent_id, iso(app.clock.now()))
        audit.record(app, "org.add", name, {"parent": parent})
    return Org(name=name, parent=parent)


def list_(app: AppContext) -> list[Org]:
    require(app, "org.read")
    return app.store.orgs.all()
