"""Followers: reads of the store's followers, merged with the engine's events.

What the store holds comes from the sync (follower_sync.py); between syncs the engine's
subscribe and unsubscribe events (``follower_state``) are merged into every read. The
account's tags are in tags.py; tagging and the blacklist, in WeChat's batches, in
follower_batches.py.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from bankwx_cli.clock import iso, parse_user_time
from bankwx_cli.domain import accounts
from bankwx_cli.domain.permissions import require
from bankwx_cli.errors import NotFoundError, ValidationError
from bankwx_cli.models.accounts import Account
from bankwx_cli.models.followers import Follower, FollowerRecord, Profile

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.models.bank import Binding

USER_INFO = "/cgi-bin/user/info"
SUBSCRIBE_SCENES = (
    "ADD_SCENE_SEARCH",
    "ADD_SCENE_ACCOUNT_MIGRATION",
    "ADD_SCENE_PROFILE_CARD",
    "ADD_SCENE_QR_CODE",
    "ADD_SCENE_PROFILE_LINK",
    "ADD_SCENE_PROFILE_ITEM",
    "ADD_SCENE_PAID",
    "ADD_SCENE_WECHAT_ADVERTISEMENT",
    "ADD_SCENE_REPRINT",
    "ADD_SCENE_LIVESTREAM",
    "ADD_SCENE_CHANNELS",
    "ADD_SCENE_OTHERS",
)
F = TypeVar("F", bound=Follower)
_OPENID = re.compile(r"[A-Za-z0-9_-]{16,64}")
SHOWN_BAD_LINES = 5  # lines named in the message about a list's malformed lines


# --- Values -----------------------------------------------------------------------------------


def check_openids(openids: list[str]) -> tuple[list[str], int]:
    """The openids without repeats (in order) and how many repeats there were.

    Raises ValidationError for an empty list or a value that is not an openid.
    """
    if not openids:
        raise ValidationError("give at least one OPENID (or a file of them with --from FILE).")
    for openid in openids:
        if not _OPENID.fullmatch(openid):
            raise ValidationError(
                f"'{openid}' is not an openid: WeChat openids are 28 letters, digits, '-' "
                "or '_'. See bankwx follower list."
            )
    unique = list(dict.fromkeys(openids))
    return unique, len(openids) - len(unique)


def read_openid_list(source: str, text: str | None = None) -> list[str]:
    """The openids of a list, one a line, in order (repeats kept: a plan counts them as
    skipped). ``source`` is a file, or ``-`` with ``text`` read from standard input. Blank
    lines and lines starting with ``#`` are skipped.

    Raises ValidationError when the file cannot be read, holds no openid, or has lines that
    are not openids (how many, and which by line number).
    """
    name = "standard input" if source == "-" else f"'{source}'"
    if text is None:
        text = _read_list(Path(source))
    openids: list[str] = []
    bad: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        if _OPENID.fullmatch(value):
            openids.append(value)
        else:
            bad.append(f"line {number} ('{value[:40]}')")
    if bad:
        shown = ", ".join(bad[:SHOWN_BAD_LINES])
        more = f" and {len(bad) - SHOWN_BAD_LINES} more" if len(bad) > SHOWN_BAD_LINES else ""
        lines = "1 line is not an openid" if len(bad) == 1 else f"{len(bad)} lines are not openids"
        raise ValidationError(
            f"in the openid list {name}, {lines}: {shown}{more}. WeChat openids "
            "are 28 letters, digits, '-' or '_', one a line; nothing was done."
        )
    if not openids:
        raise ValidationError(f"the openid list {name} holds no openid.")
    return openids


def _read_list(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ValidationError(
            f"no openid list '{path}': give a file of openids, one a line, or - for standard input."
        ) from None
    except IsADirectoryError:
        raise ValidationError(
            f"the openid list '{path}' is a directory: give a file of openids, one a line."
        ) from None
    except OSError as exc:
        raise ValidationError(f"cannot read the openid list '{path}' ({exc.strerror}).") from None
    except UnicodeDecodeError:
        raise ValidationError(
            f"the openid list '{path}' is not UTF-8 text: save it as UTF-8."
        ) from None


def check_scene(scene: str) -> str:
    value = scene.strip().upper()
    if not value.startswith("ADD_SCENE_"):
        value = "ADD_SCENE_" + value
    if value not in SUBSCRIBE_SCENES:
        raise ValidationError(
            f"--scene '{scene}' is invalid: use one of {', '.join(SUBSCRIBE_SCENES)}."
        )
    return value


def account_for(app: AppContext, permission: str, name: str | None) -> Account:
    """Check the permission (before any lookup), then resolve the account."""
    require(app, permission, name)
    account = accounts.resolve(app, name)
    if name is None:
        require(app, permission, account.name)  # operators limited to some accounts
    return account


# --- Reads ------------------------------------------------------------------------------------


def _with_tags(follower: F, tag_ids: list[int] | None, names: dict[int, str]) -> F:
    ids = tuple(tag_ids or ())
    return replace(follower, tag_ids=ids, tags=tuple(names.get(t, str(t)) for t in ids))


def _tag_names(app: AppContext, account: str) -> dict[int, str]:
    return {t.tag_id: t.name for t in app.store.tags.all(account)}


def list_(
    app: AppContext,
    name: str | None,
    *,
    tag: str | None = None,
    subscribed: bool | None = None,
    scene: str | None = None,
    since: str | None = None,
    blacklisted: bool | None = None,
    limit: int | None = None,
) -> list[Follower]:
    """Followers in the store (with the engine's newer subscribe/unsubscribe events), in
    follow order. Raises NotFoundError for a tag the store does not know."""
    account = account_for(app, "follower.read", name)
    tag_id = None
    if tag is not None:
        found = app.store.tags.by_name(account.name, tag)
        if found is None:
            raise NotFoundError(
                f"no tag named '{tag}' on account '{account.name}'. See bankwx tag list "
                "(it refreshes the tags from WeChat)."
            )
        tag_id = found.tag_id
    if limit is not None and limit < 1:
        raise ValidationError(f"--limit {limit} is invalid: use 1 or more.")
    rows = app.store.followers.listing(
        account.name,
        subscribed=subscribed,
        scene=None if scene is None else check_scene(scene),
        since=None if since is None else iso(parse_user_time(since, "--since")),
        tag_id=tag_id,
        blacklisted=blacklisted,
        limit=limit,
    )
    tags = app.store.followers.tag_ids(account.name)
    names = _tag_names(app, account.name)
    return [_with_tags(r, tags.get(r.openid), names) for r in rows]


def show(app: AppContext, name: str | None, openid: str, refresh: bool = False) -> FollowerRecord:
    """One follower with everything the store knows; ``refresh`` fetches the profile first.

    Raises NotFoundError when the store does not know the openid (and WeChatError from the
    refresh).
    """
    account = account_for(app, "follower.sync" if refresh else "follower.read", name)
    check_openids([openid])
    if refresh:
        info = app.client(account).get(USER_INFO, {"openid": openid, "lang": "zh_CN"})
        profile = Profile.from_wechat({**info, "openid": openid})
        with app.store.transaction():
            at = iso(app.clock.now())
            app.store.followers.ensure(account.name, [openid], at)
            app.store.followers.save_profiles(account.name, [profile], at)
    row = app.store.followers.get(account.name, openid)
    if row is None:
        raise NotFoundError(
            f"no follower '{openid}' in the store for account '{account.name}'. Run bankwx "
            "follower sync, or check the openid with bankwx follower list."
        )
    tag_ids = app.store.followers.tag_ids(account.name, [openid]).get(openid)
    return _with_tags(row, tag_ids, _tag_names(app, account.name))


def binding(app: AppContext, name: str | None, openid: str) -> Binding | None:
    """The bank customer the follower is bound to (domain/bank.py), or None."""
    account = account_for(app, "follower.read", name)
    return app.store.bindings.get(account.name, openid)
