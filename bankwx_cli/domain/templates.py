"""Template messages: the account's templates as WeChat lists them (``bankwx template``)."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, TypeVar

from bankwx_cli.clock import iso
from bankwx_cli.domain import accounts, audit
from bankwx_cli.domain.permissions import require
from bankwx_cli.errors import NotFoundError
from bankwx_cli.models.accounts import Account
from bankwx_cli.models.followers import Template, TemplateRecord

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext

T = TypeVar("T", bound=Template)
TEMPLATES_GET = "/cgi-bin/template/get_all_private_template"


def _template(stored: Template, kind: type[T]) -> T:
    """The store's template as the model wanted (a TemplateRecord shows its fields too)."""
    return kind(**{f.name: getattr(stored, f.name) for f in fields(kind)})


def template_for(app: AppContext, acct: Account, template_id: str) -> Template:
    """A template by id: from the store, else from WeChat's current list. NotFoundError."""
    found = app.store.templates.get(acct.name, template_id)
    if found is None:
        sync(app, acct.name)
        found = app.store.templates.get(acct.name, template_id)
    if found is None:
        raise NotFoundError(
            f"no template '{template_id}' for {acct.name}. See bankwx template list."
        )
    return _template(found, Template)


def sync(app: AppContext, account: str | None) -> list[Template]:
    """Replace the store's templates of the account with WeChat's list. Raises WeChatError."""
    require(app, "template.sync", account)
    acct = accounts.resolve(app, account)
    listed = app.client(acct).get(TEMPLATES_GET)
    templates = list(listed.get("template_list", []))
    with app.store.transaction():
        app.store.templates.replace_all(acct.name, templates, iso(app.clock.now()))
        audit.record(app, "template.sync", acct.name, {"templates": len(templates)})
    return [_template(t, Template) for t in app.store.templates.all(acct.name)]


def list_(app: AppContext, account: str | None) -> list[Template]:
    """The store's templates of the account, by title."""
    require(app, "template.read", account)
    name = accounts.resolve(app, account).name
    return [_template(t, Template) for t in app.store.templates.all(name)]


def show(app: AppContext, template_id: str, account: str | None) -> TemplateRecord:
    """One stored template and the data fields it needs. Raises NotFoundError."""
    require(app, "template.read", account)
    acct = accounts.resolve(app, account)
    found = app.store.templates.get(acct.name, template_id)
    if found is None:
        raise NotFoundError(
            f"no template '{template_id}' for {acct.name}. Run bankwx template sync."
        )
    return _template(found, TemplateRecord)
