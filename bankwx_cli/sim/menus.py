"""The simulator's custom-menu APIs: WeChat's checks and menu store (protocol sheet §5.7).

Written from the protocol sheet alone, without `bankwx_cli.domain`: the simulator must not
share bankwx's bugs. Functions are pure over a `MenuStore` and return WeChat-shaped dicts;
the HTTP router owns locking, the access token, quotas and the ``rid`` suffix of errmsg.

WeChat reports one error per call, so the checks run in order (buttons in order, each
button's name, then type, then fields) and the first failure answers. Codes (§6; WeChat's
40015-40028 family has a top-level and a sub-button variant of most checks):

| check | top-level button | sub button |
| --- | --- | --- |
| body not an object, ``button``/``sub_button`` not a list, a button not an object | 47001 | 47001 |
| ``button`` missing, empty or more than 3 | 40016 invalid button size | |
| more than 5 ``sub_button`` | | 40023 invalid sub button size |
| ``sub_button`` under a sub button (three levels) | | 40022 invalid sub_menu level |
| both ``type`` and a non-empty ``sub_button`` | 40017 invalid button type | (40022) |
| neither ``type`` nor a non-empty ``sub_button`` | 65308 button without action | 65308 |
| ``type`` not one of the 13 types | 40017 invalid button type | 40024 invalid sub button type |
| ``name`` missing, empty, or over 16 / 60 UTF-8 bytes | 40018 | 40025 |
| ``key`` missing or empty (click, scancode_*, pic_*, ...), over 128 bytes | 40019 | 40026 |
| ``url`` missing or empty (view, miniprogram), over 1024 bytes | 40020 | 40027 |
| ``url`` not http(s)://host, or with blanks | 40055 invalid button url domain | 40054 |
| miniprogram ``appid`` missing | 40013 invalid appid | 40013 |
| miniprogram ``pagepath`` missing | 40165 invalid weapp pagepath (*) | 40165 |
| ``media_id`` (media_id, view_limited) / ``article_id`` (article_id, ...) missing | 40007 | 40007 |
| view/miniprogram urls over more than 3 distinct hosts in one menu | 65316 | 65316 |

addconditional, before the buttons: no default menu 65303; ``matchrule`` missing or with no
non-empty value 65304; a non-empty key other than ``tag_id``/``client_platform_type`` (sex,
country, province, city, language, the legacy group_id, anything else) 65320; ``tag_id`` not
a decimal number 45159 (invalid tag id); ``client_platform_type`` not 1, 2 or 3, or a
value that is neither text nor a number, 47001.
delconditional: unknown or missing menuid 65301. menu/get and trymatch with no default menu:
46003. trymatch without ``user_id``: 65302. (*) 40165 is WeChat's code, not in the sheet.
The sim does not check that a media_id, article_id, mini program or tag exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ERRMSG: dict[int, str] = {
    0: "ok",
    40007: "invalid media_id",
    40013: "invalid appid",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40020: "invalid button url size",
    40022: "invalid sub_menu level",
    40023: "invalid sub button size",
    40024: "invalid sub button type",
    40025: "invalid sub button name size",
    40026: "invalid sub button key size",
    40027: "invalid sub button url size",
    40054: "invalid sub button url domain",
    40055: "invalid button url domain",
    40165: "invalid weapp pagepath",
    45159: "invalid tag id",
    46003: "menu no exist",
    47001: "data format error",
    65301: "no such menuid",
    65302: "no such user",
    65303: "there is no selfmenu, please create selfmenu first",
    65304: "match rule empty",
    65308: "button without action",
    65316: "too many domains in menu urls (at most 3)",
    65320: "matchrule field not allowed (privacy)",
}

_NEEDS_KEY = {
    "click",
    "scancode_push",
    "scancode_waitmsg",
    "pic_sysphoto",
    "pic_photo_or_album",
    "pic_weixin",
    "location_select",
}
_NEEDS_MEDIA = {"media_id", "view_limited"}
_NEEDS_ARTICLE = {"article_id", "article_view_limited"}
_ALL_TYPES = _NEEDS_KEY | _NEEDS_MEDIA | _NEEDS_ARTICLE | {"view", "miniprogram"}
# The fields WeChat keeps per type, in the order its menu/get sample writes them.
_KEPT: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(_NEEDS_KEY, ("key",)),
    **dict.fromkeys(_NEEDS_MEDIA, ("media_id",)),
    **dict.fromkeys(_NEEDS_ARTICLE, ("article_id",)),
    "view": ("url",),
    "miniprogram": ("url", "appid", "pagepath"),
}
_PLATFORMS = {"1": "1", "2": "2", "3": "3", "ios": "1", "android": "2", "other": "3"}
_RULE_FIELDS = ("tag_id", "client_platform_type")
_URL = re.compile(r"(https?)://([^/?#]*)", re.IGNORECASE)
_BLANK = re.compile(r"[\x00-\x20\x7f]|\s")
_DIGITS = re.compile(r"[0-9]+")

FIRST_MENUID = 208379533


@dataclass
class ConditionalEntry:
    """A stored conditional menu, buttons as WeChat keeps them."""

    menuid: int
    button: list[dict[str, Any]]
    matchrule: dict[str, str]


@dataclass
class MenuStore:
    """One account's menus: the default menu (None: no menu) and the conditional menus.

    ``conditional`` is oldest first; trymatch tries the newest first.
    """

    button: list[dict[str, Any]] | None = None
    menuid: int | None = None
    conditional: list[ConditionalEntry] = field(default_factory=list)
    next_menuid: int = FIRST_MENUID

    def new_menuid(self) -> int:
        """A fresh menuid, never reused within this store."""
        menuid = self.next_menuid
        self.next_menuid += 1
        return menuid


def error(code: int) -> dict[str, Any]:
    """WeChat's error envelope for ``code`` (0 is success)."""
    return {"errcode": code, "errmsg": ERRMSG.get(code, "error")}


# --- Checks, in WeChat's words -------------------------------------------------------------


def check_buttons(body: object) -> int:
    """0 when WeChat would accept ``body``'s ``button`` list as a menu, else the errcode."""
    if not isinstance(body, dict):
        return 47001
    buttons = body.get("button")
    if buttons is None:
        return 40016
    if not isinstance(buttons, list):
        return 47001
    if len(buttons) == 0 or len(buttons) > 3:
        return 40016
    hosts: set[str] = set()
    for top in buttons:
        if not isinstance(top, dict):
            return 47001
        children = top.get("sub_button")
        if children is not None and not isinstance(children, list):
            return 47001
        if not _name_fits(top.get("name"), 16):
            return 40018
        if not children:  # an empty sub_button is WeChat's own way of writing a leaf
            code = _check_action(top, False, hosts)
            if code:
                return code
            continue
        if top.get("type") is not None:
            return 40017
        if len(children) > 5:
            return 40023
        for child in children:
            if not isinstance(child, dict):
                return 47001
            grandchildren = child.get("sub_button")
            if grandchildren is not None and not isinstance(grandchildren, list):
                return 47001
            if grandchildren:
                return 40022
            if not _name_fits(child.get("name"), 60):
                return 40025
            code = _check_action(child, True, hosts)
            if code:
                return code
    if len(hosts) > 3:
        return 65316
    return 0


def _name_fits(name: object, limit: int) -> bool:
    return isinstance(name, str) and 0 < len(name.encode("utf-8")) <= limit


def _text(button: dict[str, Any], name: str) -> str:
    value = button.get(name)
    return value if isinstance(value, str) else ""


def _check_action(button: dict[str, Any], sub: bool, hosts: set[str]) -> int:
    kind = button.get("type")
    if kind is None:
        return 65308
    if kind not in _ALL_TYPES:
        return 40024 if sub else 40017
    if kind in _NEEDS_KEY:
        key = _text(button, "key").encode("utf-8")
        if not 0 < len(key) <= 128:
            return 40026 if sub else 40019
    elif kind in _NEEDS_MEDIA:
        if not _text(button, "media_id"):
            return 40007
    elif kind in _NEEDS_ARTICLE:
        if not _text(button, "article_id"):
            return 40007
    else:  # view, miniprogram
        url = _text(button, "url")
        if not 0 < len(url.encode("utf-8")) <= 1024:
            return 40027 if sub else 40020
        host = _host(url)
        if host is None:
            return 40054 if sub else 40055
        hosts.add(host)
        if kind == "miniprogram":
            if not _text(button, "appid"):
                return 40013
            if not _text(button, "pagepath"):
                return 40165
    return 0


def _host(url: str) -> str | None:
    """The host of an http(s) url, lower-cased, or None when there is none."""
    if _BLANK.search(url):
        return None
    found = _URL.match(url)
    if found is None:
        return None
    authority = found.group(2).rpartition("@")[2]
    if authority.startswith("["):
        end = authority.find("]")
        host = authority[1:end] if end > 0 else ""
    else:
        host = authority.partition(":")[0]
    return host.lower() or None


def _check_matchrule(rule: object) -> tuple[int, dict[str, str]]:
    if not isinstance(rule, dict):
        return 65304, {}
    kept: dict[str, str] = {}
    for name, value in rule.items():
        if value is None or value == "":
            continue  # WeChat: every field may be empty, but not all of them
        if isinstance(value, bool) or not isinstance(value, str | int):
            return 47001, {}
        kept[name] = str(value)
    if not kept:
        return 65304, {}
    if any(name not in _RULE_FIELDS for name in kept):
        return 65320, {}
    if "tag_id" in kept and not _DIGITS.fullmatch(kept["tag_id"]):
        return 45159, {}
    if "client_platform_type" in kept and kept["client_platform_type"] not in ("1", "2", "3"):
        return 47001, {}
    return 0, {name: kept[name] for name in _RULE_FIELDS if name in kept}


def _keep(buttons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Buttons as WeChat stores them: name, type and that type's fields; parents' children."""
    out: list[dict[str, Any]] = []
    for button in buttons:
        children = button.get("sub_button")
        if children:
            out.append({"name": button["name"], "sub_button": _keep(children)})
            continue
        kept: dict[str, Any] = {"type": button["type"], "name": button["name"]}
        for name in _KEPT[button["type"]]:
            kept[name] = button[name]
        out.append(kept)
    return out


def _with_empty_subs(buttons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """menu/get's rendering: every leaf carries ``"sub_button": []``, like WeChat's sample."""
    out = []
    for button in buttons:
        copy = dict(button)
        copy["sub_button"] = _with_empty_subs(button.get("sub_button", []))
        out.append(copy)
    return out


# --- The APIs ------------------------------------------------------------------------------


def create(store: MenuStore, body: object) -> dict[str, Any]:
    """menu/create: replace the default menu (conditional menus stay)."""
    if not isinstance(body, dict):
        return error(47001)
    code = check_buttons(body)
    if code:
        return error(code)
    store.button = _keep(body["button"])
    store.menuid = store.new_menuid()
    return error(0)


def get(store: MenuStore) -> dict[str, Any]:
    """menu/get: the default menu and the conditional menus, with menuids; 46003 if none."""
    if store.button is None:
        return error(46003)
    out: dict[str, Any] = {
        "menu": {"button": _with_empty_subs(store.button), "menuid": store.menuid}
    }
    if store.conditional:
        out["conditionalmenu"] = [
            {
                "button": _with_empty_subs(entry.button),
                "matchrule": dict(entry.matchrule),
                "menuid": entry.menuid,
            }
            for entry in store.conditional
        ]
    return out


def selfmenu_info(store: MenuStore) -> dict[str, Any]:
    """get_current_selfmenu_info: the live default menu, children under ``sub_button.list``."""
    if store.button is None:
        return {"is_menu_open": 0, "selfmenu_info": {"button": []}}
    rendered = []
    for button in store.button:
        if "sub_button" in button:
            rendered.append(
                {
                    "name": button["name"],
                    "sub_button": {"list": [dict(child) for child in button["sub_button"]]},
                }
            )
        else:
            rendered.append(dict(button))
    return {"is_menu_open": 1, "selfmenu_info": {"button": rendered}}


def delete(store: MenuStore) -> dict[str, Any]:
    """menu/delete: remove the default menu and every conditional menu."""
    store.button = None
    store.menuid = None
    store.conditional.clear()
    return error(0)


def add_conditional(store: MenuStore, body: object) -> dict[str, Any]:
    """menu/addconditional: ``{"menuid": "..."}`` on success, else an error envelope."""
    if not isinstance(body, dict):
        return error(47001)
    if store.button is None:
        return error(65303)
    code, rule = _check_matchrule(body.get("matchrule"))
    if code:
        return error(code)
    code = check_buttons(body)
    if code:
        return error(code)
    entry = ConditionalEntry(store.new_menuid(), _keep(body["button"]), rule)
    store.conditional.append(entry)
    return {"menuid": str(entry.menuid)}


def del_conditional(store: MenuStore, body: object) -> dict[str, Any]:
    """menu/delconditional: remove the conditional menu ``body["menuid"]``; 65301 if unknown."""
    wanted = body.get("menuid") if isinstance(body, dict) else None
    for entry in store.conditional:
        if wanted is not None and str(wanted) == str(entry.menuid):
            store.conditional.remove(entry)
            return error(0)
    return error(65301)


def trymatch(
    store: MenuStore, body: object, follower_tags: list[int], platform: str
) -> dict[str, Any]:
    """menu/trymatch: the menu a follower sees, newest matching conditional menu first.

    The router resolves ``body["user_id"]`` to the follower's tag ids and client platform
    (``"1"``/``"ios"``, ``"2"``/``"android"``, ``"3"``/``"other"``) and answers 65302 for a
    user it does not know.
    """
    if not isinstance(body, dict) or not body.get("user_id"):
        return error(65302)
    if store.button is None:
        return error(46003)
    code = _PLATFORMS.get(platform.lower())
    for entry in reversed(store.conditional):
        rule = entry.matchrule
        if "tag_id" in rule and int(rule["tag_id"]) not in follower_tags:
            continue
        if "client_platform_type" in rule and rule["client_platform_type"] != code:
            continue
        return {"button": _with_empty_subs(entry.button)}
    return {"button": _with_empty_subs(store.button)}
