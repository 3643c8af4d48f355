"""Follower tags: the account's tags kept in step with WeChat (``bankwx tag``).

Which follower holds which tag is changed in WeChat's batches (follower_batches.py) and
learnt by the sync (follower_sync.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from bankwx_cli.clock import iso
from bankwx_cli.domain import accounts, audit
from bankwx_cli.domain.followers import account_for
from bankwx_cli.errors import ConflictError, NotFoundError, ValidationError
from bankwx_cli.models.accounts import Account
from bankwx_cli.models.followers import Tag, TagChange

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.extensions import Registry
    from bankwx_cli.wechat.client import WeChatClient

TAGS_GET = "/cgi-bin/tags/get"
TAGS_CREATE = "/cgi-bin/tags/create"
TAGS_UPDATE = "/cgi-bin/tags/update"
TAGS_DELETE = "/cgi-bin/tags/delete"
MAX_TAGS = 100  # tags an account may create
TAG_NAME_MAX = 30  # characters


def check_tag_name(name: str) -> str:
    if not name.strip():
        raise ValidationError("a tag name may not be empty.")
    if len(name) > TAG_NAME_MAX:
        raise ValidationError(
            f"tag name '{name}' is {len(name)} characters long: WeChat allows "
            f"{TAG_NAME_MAX} at most."
        )
    return name


def _now(app: AppContext) -> str:
    return iso(app.clock.now())


def _refresh_tags(app: AppContext, account: str, client: WeChatClient) -> list[Tag]:
    listed = client.get(TAGS_GET).get("tags") or []
    with app.store.transaction():
        now = _now(app)
        app.store.tags.replace(account, [Tag.from_wechat(t, now) for t in listed])
    return app.store.tags.all(account)


def live_tag(app: AppContext, account: Account, name: str) -> Tag:
    """A tag by name: from the store, else from WeChat's current list. NotFoundError."""
    found = app.store.tags.by_name(account.name, name)
    if found is None:
        _refresh_tags(app, account.name, app.client(account))
        found = app.store.tags.by_name(account.name, name)
    if found is None:
        raise NotFoundError(
            f"no tag named '{name}' on account '{account.name}'. Create it with bankwx tag "
            "create, or see bankwx tag list."
        )
    return found


def list_(app: AppContext, name: str | None, cached: bool = False) -> list[Tag]:
    """The account's tags with WeChat's follower counts, fetched from WeChat (and stored)
    unless ``cached``. Raises WeChatError."""
    account = account_for(app, "tag.read", name)
    if cached:
        return app.store.tags.all(account.name)
    return _refresh_tags(app, account.name, app.client(account))


def _not_system(tag: Tag) -> None:
    if tag.system:
        raise ValidationError(
            f"tag '{tag.name}' (id {tag.tag_id}) is a system tag: WeChat does not allow "
            "renaming or deleting it."
        )


def _name_free(app: AppContext, account: str, name: str) -> str:
    check_tag_name(name)
    taken = app.store.tags.by_name(account, name)
    if taken is not None:
        raise ConflictError(
            f"a tag named '{name}' exists (id {taken.tag_id}). See bankwx tag list."
        )
    return name


def plan_create(app: AppContext, name: str | None, tag: str) -> TagChange:
    """Check a new tag against the stored tags (name length, uniqueness, WeChat's 100)."""
    account = account_for(app, "tag.create", name)
    _name_free(app, account.name, tag)
    own = [t for t in app.store.tags.all(account.name) if not t.system]
    if len(own) >= MAX_TAGS:
        raise ConflictError(
            f"account '{account.name}' has {len(own)} tags, WeChat's maximum: delete one first."
        )
    return TagChange("create", account.name, tag)


def create(app: AppContext, name: str | None, tag: str) -> TagChange:
    """Create a tag on WeChat and in the store. Raises ValidationError, ConflictError,
    WeChatError (45056 too many, 45157 name used, 45158 too long)."""
    change = plan_create(app, name, tag)
    account = accounts.get(app, change.account)
    created = app.client(account).post(TAGS_CREATE, {"tag": {"name": tag}})["tag"]
    change = replace(change, tag_id=int(created["id"]))
    with app.store.transaction():
        app.store.tags.upsert(change.account, int(created["id"]), tag, 0, _now(app))
        audit.record(app, "tag.create", change.account, {"tag": tag, "tag_id": change.tag_id})
    return change


def plan_rename(app: AppContext, name: str | None, old: str, new: str) -> TagChange:
    account = account_for(app, "tag.rename", name)
    check_tag_name(new)
    tag = live_tag(app, account, old)
    _not_system(tag)
    if new != old:
        _name_free(app, account.name, new)
    return TagChange("rename", account.name, old, tag.tag_id, new, tag.count)


def rename(app: AppContext, name: str | None, old: str, new: str) -> TagChange:
    """Rename a tag on WeChat and in the store. Raises NotFoundError, ValidationError (system
    tags), ConflictError, WeChatError."""
    change = plan_rename(app, name, old, new)
    account = accounts.get(app, change.account)
    app.client(account).post(TAGS_UPDATE, {"tag": {"id": change.tag_id, "name": new}})
    with app.store.transaction():
        app.store.tags.rename(change.account, int(change.tag_id or 0), new)
        audit.record(
            app, "tag.rename", change.account, {"tag_id": change.tag_id, "from": old, "to": new}
        )
    return change


def plan_delete(app: AppContext, name: str | None, tag_name: str) -> TagChange:
    account = account_for(app, "tag.delete", name)
    tag = live_tag(app, account, tag_name)
    _not_system(tag)
    return TagChange("delete", account.name, tag_name, tag.tag_id, None, tag.count)


def delete(app: AppContext, name: str | None, tag_name: str) -> TagChange:
    """Delete a tag on WeChat (which untags its followers) and in the store. Raises
    NotFoundError, ValidationError (system tags), WeChatError (45057: over 100,000
    followers)."""
    change = plan_delete(app, name, tag_name)
    account = accounts.get(app, change.account)
    app.client(account).post(TAGS_DELETE, {"tag": {"id": change.tag_id}})
    with app.store.transaction():
        app.store.tags.delete(change.account, int(change.tag_id or 0))
        audit.record(app, "tag.delete", change.account, {"tag": tag_name, "tag_id": change.tag_id})
    return change


def synced_tag_ids(app: AppContext, account: str) -> set[str] | None:
    """The account's tag ids as last synced (None when its tags were never synced)."""
    tags = app.store.tags.all(account)
    return {str(t.tag_id) for t in tags} if tags else None


def install(registry: Registry) -> None:
    """This area's declarations (bankwx_cli/extensions.py): where menus check tag ids."""
    registry.tag_source(synced_tag_ids)
