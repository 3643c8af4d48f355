"""Followers, tags and the blacklist (protocol sheet §5.8), with WeChat's limits and codes.

Followers come from ``SimState`` (generated from ``--followers`` and ``--seed``); a follower's
tags live in its ``tagid_list`` and the blacklist in its ``blacklisted`` flag, so that
``GET /sim/followers`` shows both. Tag names are this module's own memory, kept across a
runtime reset like other account configuration.

``user/get`` pages follow WeChat's order (follow time) by ``next_openid``; unfollowed followers
keep their place in that order, so a cursor stays valid when its follower leaves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bankwx_cli.sim.codes import ApiError
from bankwx_cli.sim.routing import Request, Result, data, ok, route
from bankwx_cli.sim.state import OPENID_RE, SUBSCRIBE_SCENES, Follower, SimState

PAGE_SIZE = 10_000  # user/get, user/tag/get, getblacklist
BATCHGET_MAX = 100
TAGGING_MAX = 50
BLACKLIST_MAX = 20
TAGS_MAX = 100  # tags an account may create
TAG_NAME_MAX = 30  # characters
TAGS_PER_FOLLOWER = 20
UNDELETABLE_FANS = 100_000  # a tag with more fans than this cannot be deleted
FIRST_TAG_ID = 100
SYSTEM_TAGS = {0: "未分组", 1: "黑名单", 2: "星标组"}
LISTED_SYSTEM_TAGS = (2,)  # what tags/get shows of them
TAGGABLE_SYSTEM_TAGS = (2,)
MAX_CURSORS = 10_000

_ERRMSG = {
    40032: "invalid openid list size",
    45056: "too many tags",
    45057: "tag has too many fans, can not delete",
    45058: "can not modify sys tag",
    45059: "too many tags on user",
    45157: "invalid tag name",
    45158: "tag name too long",
    45159: "invalid tag id",
}


def _error(errcode: int) -> ApiError:
    return ApiError(errcode, _ERRMSG.get(errcode))


# -- module memory ----------------------------------------------------------------------------


@dataclass
class TagBook:
    """One account's tags: names by id, and the next id to hand out."""

    names: dict[int, str] = field(default_factory=dict)
    next_id: int = FIRST_TAG_ID


@dataclass
class FollowOrder:
    """The follow order of one account's table, rebuilt when the table's order changes.

    ``cursors`` remembers, for each ``next_openid`` handed out, its position and the total of
    the pass it belongs to, so that the next page starts without a scan.
    """

    signature: tuple[int, str | None] = (0, None)
    openids: list[str] = field(default_factory=list)
    cursors: dict[str, tuple[int, int]] = field(default_factory=dict)


def _tag_book(state: SimState, appid: str) -> TagBook:
    books: dict[str, TagBook] = state.module_state("users.tags", dict, keep_on_reset=True)
    return books.setdefault(appid, TagBook())


def _order(state: SimState, appid: str) -> FollowOrder:
    orders: dict[str, FollowOrder] = state.module_state("users.order", dict)
    order = orders.setdefault(appid, FollowOrder())
    table = state.follower_table(appid)
    # Followers are only ever appended or moved to the end (a new follow): the size and the
    # last openid change whenever the order does.
    signature = (len(table), next(reversed(table), None))
    if signature != order.signature:
        order.signature = signature
        order.openids = list(table)
        order.cursors = {}
    return order


def _position(order: FollowOrder, openid: str) -> tuple[int, int | None]:
    """(index in the follow order, the total remembered with it) of a ``next_openid``."""
    remembered = order.cursors.get(openid)
    if remembered is not None:
        return remembered
    try:
        return order.openids.index(openid), None
    except ValueError:
        raise ApiError(40003) from None


def _remember(order: FollowOrder, openid: str, position: int, total: int) -> None:
    if len(order.cursors) >= MAX_CURSORS:
        order.cursors.clear()
    order.cursors[openid] = (position, total)


# -- helpers ----------------------------------------------------------------------------------


def _openid_list(body: dict[str, Any], limit: int) -> list[str]:
    """``openid_list`` of 1..limit openids (40032 otherwise; 47001 when not a list)."""
    value = body.get("openid_list")
    if not isinstance(value, list):
        raise ApiError(47001)
    if not value or len(value) > limit:
        raise _error(40032)
    return value


def _followers(state: SimState, appid: str, openids: list[Any]) -> list[Follower]:
    """The subscribed followers named; 40003 for any that is not one (nothing is changed)."""
    found: list[Follower] = []
    for openid in openids:
        follower = state.follower(appid, openid) if isinstance(openid, str) else None
        if follower is None or not follower.subscribe or not OPENID_RE.fullmatch(openid):
            raise ApiError(40003)
        found.append(follower)
    return found


def _profile(follower: Follower) -> dict[str, Any]:
    if not follower.subscribe:
        return {"subscribe": 0, "openid": follower.openid}
    return {
        "subscribe": 1,
        "openid": follower.openid,
        "language": follower.language,
        "subscribe_time": follower.subscribe_time,
        "remark": follower.remark,
        "groupid": 0,
        "tagid_list": list(follower.tagid_list),
        "subscribe_scene": follower.subscribe_scene,
        "qr_scene": follower.qr_scene,
        "qr_scene_str": follower.qr_scene_str,
    }


def _known(state: SimState, appid: str, openid: Any) -> Follower:
    """A follower the account has seen (subscribed or not); 40003 otherwise."""
    if not isinstance(openid, str) or not OPENID_RE.fullmatch(openid):
        raise ApiError(40003)
    follower = state.follower(appid, openid)
    if follower is None:
        raise ApiError(40003)
    return follower


def _page(openids: list[str], total: int | None = None) -> Result:
    """WeChat's page shape; the last page has ``count`` 0 and no ``data``."""
    fields: dict[str, Any] = {} if total is None else {"total": total}
    if not openids:
        return data(**fields, count=0, next_openid="")
    return data(**fields, count=len(openids), data={"openid": openids}, next_openid=openids[-1])


def _scan(
    state: SimState, appid: str, start: int, order: list[str], wanted: Any
) -> tuple[list[str], int]:
    """Up to PAGE_SIZE openids from ``start`` on in follow order that ``wanted`` accepts, and
    the index of the last one taken."""
    table = state.follower_table(appid)
    taken: list[str] = []
    last = start - 1
    for index in range(start, len(order)):
        follower = table.get(order[index])
        if follower is not None and wanted(follower):
            taken.append(follower.openid)
            last = index
            if len(taken) == PAGE_SIZE:
                break
    return taken, last


def _cursor(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(47001)
    return value


def _tag_id(body: dict[str, Any], key: str = "tagid") -> int:
    value = body.get(key)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _error(45159)
    return value


def _tag_object(body: dict[str, Any]) -> dict[str, Any]:
    tag = body.get("tag")
    if not isinstance(tag, dict):
        raise ApiError(47001)
    return tag


def _check_name(book: TagBook, name: Any, own_id: int | None = None) -> str:
    if not isinstance(name, str) or not name.strip():
        raise _error(45157)
    if len(name) > TAG_NAME_MAX:
        raise _error(45158)
    taken = {n for i, n in book.names.items() if i != own_id} | set(SYSTEM_TAGS.values())
    if name in taken:
        raise _error(45157)
    return name


def _existing_tag(book: TagBook, tag_id: int) -> int:
    if tag_id in SYSTEM_TAGS:
        raise _error(45058)
    if tag_id not in book.names:
        raise _error(45159)
    return tag_id


def _fans(state: SimState, appid: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for follower in state.follower_table(appid).values():
        if follower.tagid_list and follower.subscribe:  # most followers have no tag
            for tag_id in follower.tagid_list:
                counts[tag_id] = counts.get(tag_id, 0) + 1
    return counts


def _listed_page(openids: list[str], cursor: str) -> list[str]:
    """Up to PAGE_SIZE of ``openids`` (in follow order) after ``cursor``; 40003 for a cursor
    that is not among them."""
    start = 0
    if cursor:
        try:
            start = openids.index(cursor) + 1
        except ValueError:
            raise ApiError(40003) from None
    return openids[start : start + PAGE_SIZE]


# -- followers ----------------------------------------------------------------------------------


@route("GET", "/cgi-bin/user/get")
def user_get(state: SimState, req: Request) -> Result:
    appid = req.require_account().appid
    with state.lock:
        order = _order(state, appid)
        cursor = req.query.get("next_openid", "")
        total: int | None = None
        start = 0
        if cursor:
            position, total = _position(order, cursor)
            start = position + 1
        if total is None:
            total = sum(1 for f in state.follower_table(appid).values() if f.subscribe)
        openids, last = _scan(state, appid, start, order.openids, lambda f: f.subscribe)
        if openids:
            _remember(order, openids[-1], last, total)
        return _page(openids, total)


@route("GET", "/cgi-bin/user/info")
def user_info(state: SimState, req: Request) -> Result:
    appid = req.require_account().appid
    return data(**_profile(_known(state, appid, req.query.get("openid"))))


@route("POST", "/cgi-bin/user/info/batchget")
def user_info_batchget(state: SimState, req: Request) -> Result:
    appid = req.require_account().appid
    items = req.json_object().get("user_list")
    if not isinstance(items, list):
        raise ApiError(47001)
    if not items or len(items) > BATCHGET_MAX:
        raise _error(40032)
    profiles = []
    for item in items:
        if not isinstance(item, dict):
            raise ApiError(47001)
        profiles.append(_profile(_known(state, appid, item.get("openid"))))
    return data(user_info_list=profiles)


# -- tags -------------------------------------------------------------------------------------


@route("POST", "/cgi-bin/tags/create")
def tags_create(state: SimState, req: Request) -> Result:
    appid = req.require_account().appid
    name = _tag_object(req.json_object()).get("name")
    with state.lock:
        book = _tag_book(state, appid)
        checked = _check_name(book, name)
        if len(book.names) >= TAGS_MAX:
            raise _error(45056)
        tag_id = book.next_id
        book.next_id += 1
        book.names[tag_id] = checked
        return data(tag={"id": tag_id, "name": checked})


@route("GET", "/cgi-bin/tags/get")
def tags_get(state: SimState, req: Request) -> Result:
    appid = req.require_account().appid
    with state.lock:
        book = _tag_book(state, appid)
        fans = _fans(state, appid)
        tags = [
            {"id": tag_id, "name": SYSTEM_TAGS[tag_id], "count": fans.get(tag_id, 0)}
            for tag_id in LISTED_SYSTEM_TAGS
        ]
        tags += [
            {"id": tag_id, "name": name, "count": fans.get(tag_id, 0)}
            for tag_id, name in sorted(book.names.items())
        ]
        return data(tags=tags)


@route("POST", "/cgi-bin/tags/update")
def tags_update(state: SimState, req: Request) -> Result:
    appid = req.require_account().appid
    tag = _tag_object(req.json_object())
    with state.lock:
        book = _tag_book(state, appid)
        tag_id = _existing_tag(book, _tag_id(tag, "id"))
        book.names[tag_id] = _check_name(book, tag.get("name"), own_id=tag_id)
        return ok()


@route("POST", "/cgi-bin/tags/delete")
def tags_delete(state: SimState, req: Request) -> Result:
    appid = req.require_account().appid
    tag = _tag_object(req.json_object())
    with state.lock:
        book = _tag_book(state, appid)
        tag_id = _existing_tag(book, _tag_id(tag, "id"))
        if _fans(state, appid).get(tag_id, 0) > UNDELETABLE_FANS:
            raise _error(45057)
        del book.names[tag_id]
        for follower in state.follower_table(appid).values():
            if tag_id in follower.tagid_list:
                follower.tagid_list.remove(tag_id)
        return ok()


def _taggable(state: SimState, appid: str, body: dict[str, Any]) -> int:
    tag_id = _tag_id(body)
    if tag_id not in TAGGABLE_SYSTEM_TAGS and tag_id not in _tag_book(state, appid).names:
        raise _error(45159)
    return tag_id


@route("POST", "/cgi-bin/user/tag/get")
def tag_members(state: SimState, req: Request) -> Result:
    appid = req.require_account().appid
    body = req.json_object()
    with state.lock:
        tag_id = _taggable(state, appid, body)
        members = [
            o
            for o, f in state.follower_table(appid).items()
            if f.tagid_list and tag_id in f.tagid_list and f.subscribe
        ]
        return _page(_listed_page(members, _cursor(body.get("next_openid"))))


@route("POST", "/cgi-bin/tags/members/batchtagging")
def batch_tagging(state: SimState, req: Request) -> Result:
    appid = req.require_account().appid
    body = req.json_object()
    with state.lock:
        tag_id = _taggable(state, appid, body)
        followers = _followers(state, appid, _openid_list(body, TAGGING_MAX))
        for follower in followers:
            if tag_id not in follower.tagid_list and len(follower.tagid_list) >= TAGS_PER_FOLLOWER:
                raise _error(45059)
        for follower in followers:
            if tag_id not in follower.tagid_list:
                follower.tagid_list.append(tag_id)
        return ok()


@route("POST", "/cgi-bin/tags/members/batchuntagging")
def batch_untagging(state: SimState, req: Request) -> Result:
    appid = req.require_account().appid
    body = req.json_object()
    with state.lock:
        tag_id = _taggable(state, appid, body)
        for follower in _followers(state, appid, _openid_list(body, TAGGING_MAX)):
            if tag_id in follower.tagid_list:
                follower.tagid_list.remove(tag_id)
        return ok()


@route("POST", "/cgi-bin/tags/getidlist")
def tag_id_list(state: SimState, req: Request) -> Result:
    appid = req.require_account().appid
    openid = req.json_object().get("openid")
    follower = _followers(state, appid, [openid])[0]
    return data(tagid_list=list(follower.tagid_list))


# -- blacklist --------------------------------------------------------------------------------


@route("POST", "/cgi-bin/tags/members/getblacklist")
def blacklist(state: SimState, req: Request) -> Result:
    appid = req.require_account().appid
    body = req.json_object() if req.body.strip() else {}
    with state.lock:
        cursor = _cursor(body.get("begin_openid"))
        blocked = [o for o, f in state.follower_table(appid).items() if f.blacklisted]
        return _page(_listed_page(blocked, cursor), len(blocked))


def _blacklist_change(state: SimState, req: Request, blocked: bool) -> Result:
    appid = req.require_account().appid
    body = req.json_object()
    with state.lock:
        openids = _openid_list(body, BLACKLIST_MAX)
        followers = [_known(state, appid, openid) for openid in openids]
        for follower in followers:
            follower.blacklisted = blocked
        return ok()


@route("POST", "/cgi-bin/tags/members/batchblacklist")
def batch_blacklist(state: SimState, req: Request) -> Result:
    return _blacklist_change(state, req, True)


@route("POST", "/cgi-bin/tags/members/batchunblacklist")
def batch_unblacklist(state: SimState, req: Request) -> Result:
    return _blacklist_change(state, req, False)


# -- control endpoints --------------------------------------------------------------------------


def _control_body(req: Request) -> tuple[str, dict[str, Any]]:
    try:
        body = json.loads(req.body) if req.body.strip() else {}
    except ValueError as exc:
        raise ValueError(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    appid = body.get("appid")
    if not isinstance(appid, str):
        raise ValueError("appid is required")
    return appid, body


@route("POST", "/sim/followers/{openid}/unsubscribe")
def control_unsubscribe(state: SimState, req: Request) -> Result:
    """``{"appid": ...}``: the follower unfollows without a callback (tests of the sync)."""
    appid, _ = _control_body(req)
    openid = req.path_params["openid"]
    follower = state.follower(appid, openid)
    if follower is None:
        raise ValueError(f"no follower {openid} of {appid}")
    state.unsubscribe(appid, openid)
    return 200, follower.to_dict()


@route("POST", "/sim/followers/{openid}/subscribe")
def control_subscribe(state: SimState, req: Request) -> Result:
    """``{"appid": ..., "scene": "ADD_SCENE_SEARCH", "qr_scene": ""}``: a (re)follow without
    a callback. The follower becomes the newest."""
    appid, body = _control_body(req)
    if appid not in state.accounts:
        raise ValueError(f"no account {appid!r} in the simulator")
    openid = req.path_params["openid"]
    if not OPENID_RE.fullmatch(openid):
        raise ValueError(f"openid {openid!r} is not 28 letters, digits, '-' or '_'")
    scene = body.get("scene", "ADD_SCENE_SEARCH")
    if scene not in SUBSCRIBE_SCENES:
        raise ValueError(f"scene must be one of {', '.join(SUBSCRIBE_SCENES)}")
    follower = state.subscribe(appid, openid, scene, str(body.get("qr_scene", "")))
    return 200, follower.to_dict()
