"""Customer-service accounts, sessions and typing (protocol sheet §5.3, §5.4), and the control
endpoints that act as WeChat's own agent client.

WeChat API (mixed prefixes, as WeChat has them):

- every kf account and session call answers 65400 while the official account has not enabled
  customer service (``/sim/kf/enabled``);
- ``POST /customservice/kfaccount/add|update`` ``{"kf_account", "nickname"}``, ``GET
  /customservice/kfaccount/del?kf_account=``: 65403 bad nickname, 65404 bad account, 65405 more
  than 100, 65406 exists, 65401 unknown;
- ``GET /cgi-bin/customservice/getkflist``, ``GET /cgi-bin/customservice/getonlinekflist``;
- ``POST /customservice/kfsession/create|close`` ``{"kf_account", "openid"}`` (pushing
  ``kf_create_session`` / ``kf_close_session`` to the callback), ``GET
  /customservice/kfsession/getsession?openid=``, ``getsessionlist?kf_account=``,
  ``getwaitcase``: 65413 no session for the user, 65414 the user is served by another agent,
  65402 (create) a kf account no WeChat user is bound to;
- ``POST /cgi-bin/message/custom/typing`` ``{"touser", "command": "Typing"|"CancelTyping"}``:
  45072 bad command, 45080 no interaction in the last 30 s, 45081 already typing.

Control (``/sim/``, JSON, HTTP 400 ``{"error"}`` for a bad value):

- ``POST /sim/kfsessions/close`` ``{"appid", "openid"}``: the agent closes the session in
  WeChat's own client (``kf_close_session`` pushed);
- ``POST /sim/kfsessions/switch`` ``{"appid", "openid", "kf_account"}``: transferred there
  (``kf_switch_session``);
- ``POST /sim/kfaccounts/online`` ``{"appid", "kf_account", "online"}``: the web client signs in
  or out;
- ``POST /sim/kfaccounts/bind`` ``{"appid", "kf_account", "bound"}``: a WeChat user is bound to
  the kf account (the default) or not yet (65402 on kfsession/create);
- ``POST /sim/kf/enabled`` ``{"appid", "enabled"}``: the official account has customer service
  enabled (the default) or not (65400 from every kf account and session call);
- ``GET /sim/kf?appid=``: kf accounts, sessions, the waiting queue.
"""

from __future__ import annotations

import json
from typing import Any

from bankwx_cli.sim import kf
from bankwx_cli.sim.codes import ApiError
from bankwx_cli.sim.followers import schedule_push_event
from bankwx_cli.sim.routing import Request, Result, data, ok, route
from bankwx_cli.sim.state import OPENID_RE, Account, SimState

PUSH_DELAY_S = 0.02  # kf events follow the API call that caused them


# -- kf accounts --------------------------------------------------------------------------------


def _enabled(state: SimState, req: Request) -> Account:
    """The calling official account, once it has customer service enabled (65400)."""
    account = req.require_account()
    kf.require_enabled(state, account.appid)
    return account


@route("POST", "/customservice/kfaccount/add")
def kfaccount_add(state: SimState, req: Request) -> Result:
    account = _enabled(state, req)
    body = req.json_object()
    kf.add(state, account.appid, body.get("kf_account"), body.get("nickname"))
    return ok()


@route("POST", "/customservice/kfaccount/update")
def kfaccount_update(state: SimState, req: Request) -> Result:
    account = _enabled(state, req)
    body = req.json_object()
    with state.lock:
        found = kf.require(state, account.appid, body.get("kf_account"))
        found.nickname = kf.check_nickname(body.get("nickname"))
    return ok()


@route("GET", "/customservice/kfaccount/del")
def kfaccount_del(state: SimState, req: Request) -> Result:
    account = _enabled(state, req)
    kf.remove(state, account.appid, req.query.get("kf_account"))
    return ok()


@route("GET", "/cgi-bin/customservice/getkflist")
def getkflist(state: SimState, req: Request) -> Result:
    account = _enabled(state, req)
    listed = [
        {"kf_account": k.kf_account, "kf_nick": k.nickname, "kf_id": k.kf_id,
         "kf_headimgurl": f"http://sim.qlogo.cn/kf/{k.kf_id}/0"}
        for k in kf.of(state, account.appid).values()
    ]  # fmt: skip
    return data(kf_list=listed)


@route("GET", "/cgi-bin/customservice/getonlinekflist")
def getonlinekflist(state: SimState, req: Request) -> Result:
    account = _enabled(state, req)
    sessions = kf.runtime(state).sessions
    online = [
        {"kf_account": k.kf_account, "status": 1, "kf_id": k.kf_id,
         "accepted_case": sum(1 for (appid, _), s in sessions.items()
                              if appid == account.appid and s.kf_account == k.kf_account)}
        for k in kf.of(state, account.appid).values() if k.online
    ]  # fmt: skip
    return data(kf_online_list=online)


# -- sessions -----------------------------------------------------------------------------------


def _push(state: SimState, appid: str, openid: str, fields: dict[str, Any]) -> None:
    account = state.accounts.get(appid)
    if account is not None and account.callback_url:
        schedule_push_event(state, appid, openid, fields, delay=PUSH_DELAY_S)


@route("POST", "/customservice/kfsession/create")
def kfsession_create(state: SimState, req: Request) -> Result:
    account = _enabled(state, req)
    body = req.json_object()
    appid = account.appid
    with state.lock:
        agent = kf.require_bound(kf.require(state, appid, body.get("kf_account")))
        follower = state.require_follower(appid, body.get("openid"))
        key = (appid, follower.openid)
        table = kf.runtime(state)
        current = table.sessions.get(key)
        if current is not None and current.kf_account != agent.kf_account:
            raise ApiError(65414)
        if current is None:
            table.sessions[key] = kf.KfSession(agent.kf_account, int(state.now()))
            table.waiting.pop(key, None)
    if current is None:
        _push(state, appid, follower.openid,
              {"Event": "kf_create_session", "KfAccount": agent.kf_account})  # fmt: skip
    return ok()


@route("POST", "/customservice/kfsession/close")
def kfsession_close(state: SimState, req: Request) -> Result:
    account = _enabled(state, req)
    body = req.json_object()
    appid = account.appid
    agent = kf.require(state, appid, body.get("kf_account"))
    openid = body.get("openid")
    if not isinstance(openid, str) or not OPENID_RE.fullmatch(openid):
        raise ApiError(40003)
    _close(state, appid, openid, agent.kf_account)
    return ok()


def _close(state: SimState, appid: str, openid: str, kf_account: str | None) -> str:
    """End the follower's session (by this agent, when named); push kf_close_session."""
    with state.lock:
        table = kf.runtime(state)
        current = table.sessions.get((appid, openid))
        if current is None:
            raise ApiError(65413)
        if kf_account is not None and current.kf_account != kf_account:
            raise ApiError(65414)
        del table.sessions[(appid, openid)]
    _push(state, appid, openid, {"Event": "kf_close_session", "KfAccount": current.kf_account})
    return current.kf_account


@route("GET", "/customservice/kfsession/getsession")
def kfsession_getsession(state: SimState, req: Request) -> Result:
    account = _enabled(state, req)
    follower = state.require_follower(account.appid, req.query.get("openid"))
    current = kf.runtime(state).sessions.get((account.appid, follower.openid))
    if current is None:
        return data(createtime=0, kf_account="")
    return data(createtime=current.createtime, kf_account=current.kf_account)


@route("GET", "/customservice/kfsession/getsessionlist")
def kfsession_getsessionlist(state: SimState, req: Request) -> Result:
    account = _enabled(state, req)
    agent = kf.require(state, account.appid, req.query.get("kf_account"))
    listed = [
        {"createtime": s.createtime, "openid": openid}
        for (appid, openid), s in kf.runtime(state).sessions.items()
        if appid == account.appid and s.kf_account == agent.kf_account
    ]
    return data(sessionlist=listed)


@route("GET", "/customservice/kfsession/getwaitcase")
def kfsession_getwaitcase(state: SimState, req: Request) -> Result:
    account = _enabled(state, req)
    waiting = sorted(
        (latest, openid)
        for (appid, openid), latest in kf.runtime(state).waiting.items()
        if appid == account.appid
    )
    listed = [{"latest_time": t, "openid": o} for t, o in waiting[: kf.MAX_WAIT_CASES]]
    return data(count=len(waiting), waitcaselist=listed)


# -- typing -------------------------------------------------------------------------------------


@route("POST", "/cgi-bin/message/custom/typing")
def custom_typing(state: SimState, req: Request) -> Result:
    account = req.require_account()
    body = req.json_object()
    follower = state.require_follower(account.appid, body.get("touser"), unsubscribed_errcode=45015)
    command = body.get("command")
    if command not in ("Typing", "CancelTyping"):
        raise ApiError(45072)
    key = (account.appid, follower.openid)
    with state.lock:
        now = state.now()
        table = kf.runtime(state)
        if command == "CancelTyping":
            table.typing_until.pop(key, None)
            return ok()
        last = kf.last_interaction(state, *key)
        if last is None or now - last > kf.TYPING_NEEDS_INTERACTION_S:
            raise ApiError(45080)
        if now < table.typing_until.get(key, 0.0):
            raise ApiError(45081)
        table.typing_until[key] = now + kf.TYPING_LASTS_S
    state.record_delivery(appid=account.appid, openid=follower.openid, kind="typing",
                          msgtype="typing", content=command)  # fmt: skip
    return ok()


# -- control ------------------------------------------------------------------------------------


def _body(req: Request) -> dict[str, Any]:
    try:
        value = json.loads(req.body or b"{}")
    except ValueError as exc:
        raise ValueError(f"the body is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError("the body must be a JSON object")
    return value


def _appid(state: SimState, body: dict[str, Any]) -> str:
    appid = body.get("appid")
    if not isinstance(appid, str) or appid not in state.accounts:
        raise ValueError(f"no account {appid!r} in the simulator")
    return appid


def _openid(body: dict[str, Any]) -> str:
    openid = body.get("openid")
    if not isinstance(openid, str) or not OPENID_RE.fullmatch(openid):
        raise ValueError("openid must be a follower's openid (28 characters)")
    return openid


@route("POST", "/sim/kfsessions/close")
def sim_close_session(state: SimState, req: Request) -> Result:
    body = _body(req)
    appid, openid = _appid(state, body), _openid(body)
    try:
        closed_by = _close(state, appid, openid, None)
    except ApiError as exc:
        raise ValueError(f"{openid} has no customer-service session") from exc
    return 200, {"closed": True, "kf_account": closed_by}


@route("POST", "/sim/kfsessions/switch")
def sim_switch_session(state: SimState, req: Request) -> Result:
    body = _body(req)
    appid, openid = _appid(state, body), _openid(body)
    try:
        agent = kf.require(state, appid, body.get("kf_account"))
    except ApiError as exc:
        raise ValueError(f"no kf account {body.get('kf_account')!r}") from exc
    with state.lock:
        current = kf.runtime(state).sessions.get((appid, openid))
        if current is None:
            raise ValueError(f"{openid} has no customer-service session")
        was, current.kf_account = current.kf_account, agent.kf_account
    _push(state, appid, openid, {"Event": "kf_switch_session", "FromKfAccount": was,
                                 "ToKfAccount": agent.kf_account})  # fmt: skip
    return 200, {"from": was, "to": agent.kf_account}


@route("POST", "/sim/kfaccounts/online")
def sim_kf_online(state: SimState, req: Request) -> Result:
    body = _body(req)
    appid = _appid(state, body)
    online = body.get("online")
    if not isinstance(online, bool):
        raise ValueError("online must be true or false")
    try:
        agent = kf.require(state, appid, body.get("kf_account"))
    except ApiError as exc:
        raise ValueError(f"no kf account {body.get('kf_account')!r}") from exc
    agent.online = online
    return 200, {"kf_account": agent.kf_account, "online": online}


@route("POST", "/sim/kfaccounts/bind")
def sim_kf_bind(state: SimState, req: Request) -> Result:
    body = _body(req)
    appid = _appid(state, body)
    bound = body.get("bound")
    if not isinstance(bound, bool):
        raise ValueError("bound must be true or false")
    try:
        agent = kf.require(state, appid, body.get("kf_account"))
    except ApiError as exc:
        raise ValueError(f"no kf account {body.get('kf_account')!r}") from exc
    agent.bound = bound
    return 200, {"kf_account": agent.kf_account, "bound": bound}


@route("POST", "/sim/kf/enabled")
def sim_kf_enabled(state: SimState, req: Request) -> Result:
    body = _body(req)
    appid = _appid(state, body)
    enabled = body.get("enabled")
    if not isinstance(enabled, bool):
        raise ValueError("enabled must be true or false")
    with state.lock:
        disabled = kf.accounts(state).disabled
        if enabled:
            disabled.discard(appid)
        else:
            disabled.add(appid)
    return 200, {"appid": appid, "enabled": enabled}


@route("GET", "/sim/kf")
def sim_kf(state: SimState, req: Request) -> Result:
    appid = _appid(state, {"appid": req.query.get("appid")})
    table = kf.runtime(state)
    with state.lock:
        return 200, {
            "kf_accounts": [vars(k).copy() for k in kf.of(state, appid).values()],
            "sessions": [{"openid": o, "kf_account": s.kf_account, "createtime": s.createtime}
                         for (a, o), s in table.sessions.items() if a == appid],
            "waiting": [{"openid": o, "latest_time": t}
                        for (a, o), t in table.waiting.items() if a == appid],
        }  # fmt: skip
