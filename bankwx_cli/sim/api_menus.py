"""Custom-menu APIs (protocol sheet §5.7) over the checks and store of ``sim.menus``.

One ``MenuStore`` per appid, kept across ``/sim/reset`` like the account's configuration (a
reset with ``all`` forgets it). The app has checked the access token and counted the call
against the daily quotas of §7.1 before a handler runs, and adds the ``rid`` suffix to errors.

trymatch resolves ``user_id`` to one of the account's followers (65302 for anyone else); the
client platform it matches ``client_platform_type`` against is derived from the openid (the
same follower always gets the same one: 1 iOS, 2 Android, 3 other).
"""

from __future__ import annotations

import hashlib
from typing import Any

from bankwx_cli.sim import menus
from bankwx_cli.sim.routing import Request, Result, route
from bankwx_cli.sim.state import SimState

MODULE = "menus"


def _new_stores() -> dict[str, menus.MenuStore]:
    return {}


def menu_store(state: SimState, appid: str) -> menus.MenuStore:
    """The account's menus (created empty on first use)."""
    stores = state.module_state(MODULE, _new_stores, keep_on_reset=True)
    with state.lock:
        return stores.setdefault(appid, menus.MenuStore())


def follower_platform(openid: str) -> str:
    """The client platform a simulated follower uses: "1" iOS, "2" Android, "3" other."""
    return str(hashlib.sha256(openid.encode()).digest()[0] % 3 + 1)


def _store(state: SimState, req: Request) -> menus.MenuStore:
    return menu_store(state, req.require_account().appid)


def _answer(value: dict[str, Any]) -> Result:
    return 200, value


@route("POST", "/cgi-bin/menu/create")
def create(state: SimState, req: Request) -> Result:
    store = _store(state, req)
    body = req.json()
    with state.lock:
        return _answer(menus.create(store, body))


@route("GET", "/cgi-bin/menu/get")
def get(state: SimState, req: Request) -> Result:
    store = _store(state, req)
    with state.lock:
        return _answer(menus.get(store))


@route("GET", "/cgi-bin/get_current_selfmenu_info")
def selfmenu_info(state: SimState, req: Request) -> Result:
    store = _store(state, req)
    with state.lock:
        return _answer(menus.selfmenu_info(store))


@route("GET", "/cgi-bin/menu/delete")
def delete(state: SimState, req: Request) -> Result:
    store = _store(state, req)
    with state.lock:
        return _answer(menus.delete(store))


@route("POST", "/cgi-bin/menu/addconditional")
def add_conditional(state: SimState, req: Request) -> Result:
    store = _store(state, req)
    body = req.json()
    with state.lock:
        return _answer(menus.add_conditional(store, body))


@route("POST", "/cgi-bin/menu/delconditional")
def del_conditional(state: SimState, req: Request) -> Result:
    store = _store(state, req)
    body = req.json()
    with state.lock:
        return _answer(menus.del_conditional(store, body))


@route("POST", "/cgi-bin/menu/trymatch")
def trymatch(state: SimState, req: Request) -> Result:
    account = req.require_account()
    store = menu_store(state, account.appid)
    body = req.json()
    user_id = body.get("user_id") if isinstance(body, dict) else None
    follower = state.follower(account.appid, user_id) if isinstance(user_id, str) else None
    if user_id and follower is None:
        return _answer(menus.error(65302))
    tags = list(follower.tagid_list) if follower is not None else []
    platform = follower_platform(follower.openid) if follower is not None else "3"
    with state.lock:
        return _answer(menus.trymatch(store, body, tags, platform))
