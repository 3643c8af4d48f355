"""Control endpoints under ``/sim/``: register accounts, act as followers, read what happened,
move the clock, inject faults, reset. JSON in and out; a bad value is HTTP 400
``{"error": "..."}``."""

from __future__ import annotations

import json
from typing import Any

from bankwx_cli.sim.followers import send_from_follower, verify_url
from bankwx_cli.sim.routing import Request, Result, route
from bankwx_cli.sim.state import SimState, account_from_dict


def _body(req: Request) -> dict[str, Any]:
    if not req.body.strip():
        return {}
    try:
        value = json.loads(req.body)
    except ValueError as exc:
        raise ValueError(f"the body is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError("the body must be a JSON object")
    return value


def _int(req: Request, name: str, default: int) -> int:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer") from exc


def _flag(req: Request, name: str) -> bool:
    return req.query.get(name, "").lower() in ("1", "true", "yes")


@route("POST", "/sim/accounts")
def register_account(state: SimState, req: Request) -> Result:
    account = state.register_account(account_from_dict(_body(req)))
    return 201, account.to_dict()


@route("GET", "/sim/accounts")
def list_accounts(state: SimState, req: Request) -> Result:
    return 200, [a.to_dict() for a in state.accounts.values()]


@route("POST", "/sim/accounts/{appid}/verify")
async def verify_account_url(state: SimState, req: Request) -> Result:
    return 200, await verify_url(state, req.path_params["appid"])


@route("GET", "/sim/followers")
def list_followers(state: SimState, req: Request) -> Result:
    """``?appid=...&limit=100&offset=0&all=1`` (all: include those who unfollowed)."""
    appid = req.query.get("appid", "")
    if appid not in state.accounts:
        raise ValueError(f"no account {appid!r} in the simulator")
    limit, offset = _int(req, "limit", 100), _int(req, "offset", 0)
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must not be negative")
    table = state.follower_table(appid).values()
    chosen = [f for f in table if f.subscribe or _flag(req, "all")]
    return 200, [f.to_dict() for f in chosen[offset : offset + limit]]


@route("POST", "/sim/followers/{openid}/send")
async def follower_send(state: SimState, req: Request) -> Result:
    body = _body(req)
    appid = body.pop("appid", None)
    if not isinstance(appid, str):
        raise ValueError("appid is required")
    return 200, await send_from_follower(state, appid, req.path_params["openid"], body)


def _filtered(entries: list[dict[str, Any]], req: Request, names: tuple[str, ...]) -> Result:
    """Entries after ``since`` (a seq number) matching the named query fields; with ``limit``
    only the last so many."""
    since, limit = _int(req, "since", 0), _int(req, "limit", 0)
    chosen = [
        e
        for e in entries
        if e["seq"] > since and all(str(e.get(n)) == req.query[n] for n in names if n in req.query)
    ]
    return 200, chosen[-limit:] if limit > 0 else chosen


@route("GET", "/sim/log")
def log(state: SimState, req: Request) -> Result:
    """``?kind=api|callback&path=...&appid=...&since=SEQ&limit=N``."""
    with state.lock:
        return _filtered(list(state.log), req, ("kind", "path", "appid"))


@route("GET", "/sim/delivered")
def delivered(state: SimState, req: Request) -> Result:
    """``?appid=&openid=&kind=custom|template|mass|preview|reply|notice&since=SEQ&limit=N``."""
    with state.lock:
        return _filtered(list(state.delivered), req, ("appid", "openid", "kind"))


@route("GET", "/sim/state")
def summary(state: SimState, req: Request) -> Result:
    return 200, state.summary()


@route("POST", "/sim/clock")
def clock(state: SimState, req: Request) -> Result:
    """``{"advance": SECONDS}`` moves the simulated clock forward."""
    seconds = _body(req).get("advance", 0)
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise ValueError("advance must be a number of seconds")
    now = state.advance(seconds)
    return 200, {"now": int(now), "clock_offset": state.clock_offset}


@route("POST", "/sim/faults")
def faults(state: SimState, req: Request) -> Result:
    """Any of fail_rate, latency_ms, seed, callback_timeout, quota_scale, kinds, quotas."""
    return 200, state.set_faults(_body(req)).to_dict()


@route("POST", "/sim/reset")
def reset(state: SimState, req: Request) -> Result:
    """``{"all": true}`` also forgets accounts and followers."""
    everything = _body(req).get("all", False) is True
    state.reset(everything)
    return 200, {"reset": "all" if everything else "runtime"}
