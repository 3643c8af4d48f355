"""Template messages: the account's templates as WeChat lists them (``bankwx template``)."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

from bankwx_cli.clock import iso
from bankwx_cli.domain import accounts, audit
from bankwx_cli.domain.permissions import require
from bankwx_cli.domain.template_fields import field_rules
from bankwx_cli.errors import BankwxError, NotFoundError
from bankwx_cli.models.accounts import Account
from bankwx_cli.models.followers import Template
from bankwx_cli.models.templates import TemplateRecord

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext

TEMPLATES_GET = "/cgi-bin/template/get_all_private_template"


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
    return found


def parse_listing(account: str, listed: Any, at: str) -> list[Template]:
    """The templates of WeChat's ``get_all_private_template`` answer. Raises
    BankwxError when it is not in the protocol's shape."""
    items = listed.get("template_list", []) if isinstance(listed, dict) else None
    if not isinstance(items, list):
        raise BankwxError("WeChat's template list has no 'template_list' array.")
    found: list[Template] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("template_id"), str):
            raise BankwxError("WeChat's template list holds an item without a template_id.")

        def text(key: str, item: dict[str, Any] = item) -> str:
            value = item.get(key)
            return value if isinstance(value, str) else ""

        found.append(
            Template(
                account=account,
                template_id=item["template_id"],
                title=text("title"),
                content=text("content"),
                example=text("example"),
                primary_industry=text("primary_industry"),
                deputy_industry=text("deputy_industry"),
                synced_at=at,
            )
        )
    return found


def sync(app: AppContext, account: str | None) -> list[Template]:
    """Replace the store's templates of the account with WeChat's list. Raises WeChatError,
    or BankwxError for a list outside the protocol's shape."""
    require(app, "template.sync", account)
    acct = accounts.resolve(app, account)
    listed = app.client(acct).get(TEMPLATES_GET)
    templates = parse_listing(acct.name, listed, iso(app.clock.now()))
    with app.store.transaction():
        app.store.templates.replace_all(acct.name, templates)
        audit.record(app, "template.sync", acct.name, {"templates": len(templates)})
    return app.store.templates.all(acct.name)


def list_(app: AppContext, account: str | None) -> list[Template]:
    """The store's templates of the account, by title."""
    require(app, "template.read", account)
    name = accounts.resolve(app, account).name
    return app.store.templates.all(name)


def show(app: AppContext, template_id: str, account: str | None) -> TemplateRecord:
    """One stored template, the data fields it needs and each field's rule (type, required).
    Raises NotFoundError."""
    require(app, "template.read", account)
    acct = accounts.resolve(app, account)
    found = app.store.templates.get(acct.name, template_id)
    if found is None:
        raise NotFoundError(
            f"no template '{template_id}' for {acct.name}. Run bankwx template sync."
        )
    return TemplateRecord(
        **{f.name: getattr(found, f.name) for f in fields(Template)},
        field_rules=tuple(field_rules(found.fields)),
    )
